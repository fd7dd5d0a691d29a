package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	linksv1 "github.com/gok8s/gok8s/api/links/v1"
	"github.com/gok8s/gok8s/app/internal/links"
	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/gok8s/gok8s/grpchealth"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// newGRPCServer returns the gRPC server: the links API, grpc.health.v1 from
// health, and server reflection (so that grpcurl needs no .proto file).
//
// Every RPC but the health service's goes through the go-grpc-middleware
// interceptors: Prometheus series on reg (grpc_server_*), one log line per
// call on log, and recovery, which turns a panic into INTERNAL and logs its
// stack. Health RPCs are neither logged nor counted, as probes are not on HTTP.
// Links RPCs are bounded by GRPC_TIMEOUT.
//
// Connections: the handshake is bounded by HTTP_READ_HEADER_TIMEOUT, a
// connection idle for HTTP_IDLE_TIMEOUT is closed, messages are limited to
// HTTP_MAX_BODY_BYTES, and every connection ends after
// GRPC_MAX_CONNECTION_AGE (±10 %) plus GRPC_MAX_CONNECTION_AGE_GRACE for the
// RPCs in flight: the client then reconnects through the Service, which is how
// clients spread over the pods a scale-up adds (see README).
func newGRPCServer(cfg config, svc *links.Service, health *grpchealth.Server, reg prometheus.Registerer, log *slog.Logger, tr *tracing.Tracing) *grpc.Server {
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}),
	))
	reg.MustRegister(metrics)
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName
	})
	logger := logging.LoggerFunc(func(ctx context.Context, level logging.Level, msg string, fields ...any) {
		log.Log(ctx, slog.Level(level), msg, fields...)
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	onPanic := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "grpc: handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})

	srv := grpc.NewServer(append(tr.GRPCServerOptions(), // a server span per API RPC, when tracing is on
		grpc.ChainUnaryInterceptor(
			selector.UnaryServerInterceptor(metrics.UnaryServerInterceptor(), notHealth),
			selector.UnaryServerInterceptor(logging.UnaryServerInterceptor(logger, logOpts...), notHealth),
			recovery.UnaryServerInterceptor(onPanic),
			selector.UnaryServerInterceptor(timeout(cfg.GRPCTimeout), notHealth),
		),
		grpc.ChainStreamInterceptor(
			selector.StreamServerInterceptor(metrics.StreamServerInterceptor(), notHealth),
			selector.StreamServerInterceptor(logging.StreamServerInterceptor(logger, logOpts...), notHealth),
			recovery.StreamServerInterceptor(onPanic),
		),
		grpc.ConnectionTimeout(cfg.ReadHeaderTimeout),
		grpc.MaxRecvMsgSize(int(min(cfg.MaxBodyBytes, 1<<30))),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     cfg.IdleTimeout,
			MaxConnectionAge:      cfg.GRPCMaxConnectionAge,
			MaxConnectionAgeGrace: cfg.GRPCMaxConnectionAgeGrace,
		}),
	)...)
	linksv1.RegisterLinkServiceServer(srv, links.NewGRPCServer(svc))
	healthpb.RegisterHealthServer(srv, health)
	reflection.Register(srv)
	metrics.InitializeMetrics(withoutHealth{srv}) // a zero series per links method, none for health
	return srv
}

// timeout returns an interceptor that bounds each unary call by d; a shorter
// deadline of the client's stays.
func timeout(d time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return h(ctx, req)
	}
}

// withoutHealth is the services of a server but the health service.
type withoutHealth struct{ *grpc.Server }

func (w withoutHealth) GetServiceInfo() map[string]grpc.ServiceInfo {
	info := w.Server.GetServiceInfo()
	delete(info, healthpb.Health_ServiceDesc.ServiceName)
	return info
}

// stopGRPC ends every Watch stream of health, then stops srv gracefully: no
// new RPCs, the ones in flight finish. When ctx ends first it stops srv at
// once, cancelling what is left, and returns an error.
func stopGRPC(ctx context.Context, srv *grpc.Server, health *grpchealth.Server) error {
	health.Shutdown() // else an open Watch would hold GracefulStop until ctx ends
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		srv.Stop()
		<-done
		return errors.New("gRPC calls still running")
	}
}
