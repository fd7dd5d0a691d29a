package tracing

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// GRPCServerOptions returns the options that give a gRPC server a server
// span per RPC (otelgrpc, named "links.v1.LinkService/GetLink"), continuing
// the caller's W3C trace context from its metadata; the health service's RPCs
// (the kubelet's probes) and server reflection get none. When tracing is off
// it returns nil.
func (t *Tracing) GRPCServerOptions() []grpc.ServerOption {
	if !t.Enabled() {
		return nil
	}
	notTraced := filters.Any(
		filters.ServiceName(healthpb.Health_ServiceDesc.ServiceName),
		filters.ServiceName("grpc.reflection.v1.ServerReflection"),
		filters.ServiceName("grpc.reflection.v1alpha.ServerReflection"),
	)
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.provider), otelgrpc.WithPropagators(t.propagator),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()), // the app has its own gRPC metrics
		otelgrpc.WithFilter(filters.Not(notTraced)),
	))}
}
