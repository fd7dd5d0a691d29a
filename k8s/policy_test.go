package k8s_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gok8s/gok8s/grpchealth"
	"github.com/gok8s/gok8s/middleware"
	"github.com/gok8s/gok8s/probes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The app's Deployment and container.
const appName, appContainer = "gok8s", "app"

// The Secret the app reads DATABASE_URL from, and its key. The manifests do
// not create it: the team supplies it (README, "Kubernetes"), the
// dev-backends component for development.
const databaseSecret, databaseKey = "gok8s-database", "DATABASE_URL"

// objects is one rendered overlay, decoded.
type objects struct {
	workloads  []workload
	services   []corev1.Service
	pdbs       []policyv1.PodDisruptionBudget
	configMaps map[string]corev1.ConfigMap
	secrets    map[string]corev1.Secret
	accounts   map[string]bool
	hpas       []autoscalingv2.HorizontalPodAutoscaler
	netpols    []networkingv1.NetworkPolicy
	namespaces []corev1.Namespace
	monitors   []serviceMonitor
}

// serviceMonitor is the part of a prometheus-operator ServiceMonitor checked
// here; envtest validates the rest against the CRD.
type serviceMonitor struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// workload is a Deployment or a StatefulSet.
type workload struct {
	kind, name  string
	selector    map[string]string
	template    corev1.PodTemplateSpec
	serviceName string // StatefulSet only
	replicas    *int32
	strategy    appsv1.DeploymentStrategy // Deployment only
}

func decode(t testing.TB, objs []*unstructured.Unstructured) objects {
	t.Helper()
	o := objects{configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}, accounts: map[string]bool{}}
	conv := func(u *unstructured.Unstructured, into any) {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "Deployment", "StatefulSet":
			var spec struct {
				Spec struct {
					Selector struct {
						MatchLabels      map[string]string `json:"matchLabels"`
						MatchExpressions []any             `json:"matchExpressions"`
					} `json:"selector"`
					Template    corev1.PodTemplateSpec    `json:"template"`
					ServiceName string                    `json:"serviceName"`
					Replicas    *int32                    `json:"replicas"`
					Strategy    appsv1.DeploymentStrategy `json:"strategy"`
				} `json:"spec"`
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &spec); err != nil {
				t.Fatal(err)
			}
			if len(spec.Spec.Selector.MatchExpressions) > 0 {
				t.Fatalf("%s %s: matchExpressions are not checked here", u.GetKind(), u.GetName())
			}
			o.workloads = append(o.workloads, workload{
				kind: u.GetKind(), name: u.GetName(), selector: spec.Spec.Selector.MatchLabels, template: spec.Spec.Template,
				serviceName: spec.Spec.ServiceName, replicas: spec.Spec.Replicas, strategy: spec.Spec.Strategy,
			})
		case "Service":
			var s corev1.Service
			conv(u, &s)
			o.services = append(o.services, s)
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			conv(u, &p)
			o.pdbs = append(o.pdbs, p)
		case "ConfigMap":
			var c corev1.ConfigMap
			conv(u, &c)
			o.configMaps[c.Name] = c
		case "Secret":
			var s corev1.Secret
			conv(u, &s)
			o.secrets[s.Name] = s
		case "ServiceAccount":
			o.accounts[u.GetName()] = true
		case "HorizontalPodAutoscaler":
			var h autoscalingv2.HorizontalPodAutoscaler
			conv(u, &h)
			o.hpas = append(o.hpas, h)
		case "NetworkPolicy":
			var n networkingv1.NetworkPolicy
			conv(u, &n)
			o.netpols = append(o.netpols, n)
		case "Namespace":
			var n corev1.Namespace
			conv(u, &n)
			o.namespaces = append(o.namespaces, n)
		case "ServiceMonitor":
			var m serviceMonitor
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &m); err != nil {
				t.Fatal(err)
			}
			o.monitors = append(o.monitors, m)
		}
	}
	return o
}

// app returns the app's workload and container.
func (o objects) app() (workload, corev1.Container, bool) {
	for _, w := range o.workloads {
		if w.kind == "Deployment" && w.name == appName {
			for _, c := range w.template.Spec.Containers {
				if c.Name == appContainer {
					return w, c, true
				}
			}
		}
	}
	return workload{}, corev1.Container{}, false
}

// appEnv returns the app container's environment as the app would see it:
// ConfigMaps from envFrom, then literal env values.
func (o objects) appEnv() map[string]string {
	_, c, _ := o.app()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			maps.Copy(env, o.configMaps[ef.ConfigMapRef.Name].Data)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

// envDuration returns the app's duration setting name, or def when unset.
func (o objects) envDuration(name string, def time.Duration) (time.Duration, error) {
	v, ok := o.appEnv()[name]
	if !ok {
		return def, nil
	}
	return time.ParseDuration(v)
}

// appVariables returns the environment variables the app reads, from `app help`.
var appVariables = sync.OnceValues(func() ([]string, error) {
	cmd := exec.Command("go", "run", "./app", "help")
	cmd.Dir = ".." // the service's module
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go run ./app help: %w", err)
	}
	_, table, ok := strings.Cut(string(out), "VARIABLE")
	if !ok {
		return nil, fmt.Errorf("app help has no VARIABLE table:\n%s", out)
	}
	var names []string
	for _, line := range strings.Split(table, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
})

// goRuntimeVariables are read by the Go runtime, not by the app's config.
var goRuntimeVariables = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "GOTRACEBACK"}

// A policy returns what is wrong with the objects, or nothing.
type policy func(o objects) []string

var policies = map[string]policy{
	"probe paths are the middleware's":           probePaths,
	"readiness timeout exceeds the app's":        readinessTimeout,
	"grace period exceeds the shutdown":          gracePeriod,
	"containers are limited and locked down":     hardened,
	"selectors match their templates":            selectorsMatch,
	"images are pinned":                          pinnedImages,
	"ConfigMap keys are app variables":           configKeys,
	"Services and PDBs select pods":              servicesAndPDBs,
	"named ports exist":                          namedPorts,
	"referenced objects exist":                   references,
	"StatefulSets name a headless Service":       headlessServices,
	"autoscalers target an existing Deployment":  autoscalerTargets,
	"the app reads DATABASE_URL from its Secret": databaseFromSecret,
	"namespaces enforce restricted pods":         restrictedNamespaces,
	"metrics stay inside the cluster":            metricsInside,
	"rollouts keep every pod serving":            rollouts,
	"a drain can proceed":                        drains,
	"app pods spread over nodes and zones":       spread,
	"a cache outage keeps pods in the Service":   optionalCache,
	"network: default deny":                      denyByDefault,
	"network: every pod has its policy":          everyPodSelected,
	"network: no rule allows all":                noAllowAll,
	"network: admitted ports are pods' ports":    ingressPortsExist,
	"network: the app reaches only its deps":     appEgress,
	"network: backends admit only the app":       backendsAcceptOnlyTheApp,
	"network: Prometheus reaches only metrics":   monitoringEgress,
	"network: Jaeger takes spans from the app":   tracingBackend,
}

// probePaths: the app's probes ask paths the middleware answers (or, for a
// grpc probe, services the gRPC health server answers, on GRPC_ADDR's port),
// readiness on a readiness path, liveness and start-up on a liveness path
// (never on one that checks a dependency).
func probePaths(o objects) []string {
	_, c, ok := o.app()
	if !ok {
		return []string{"no app Deployment " + appName + " with container " + appContainer}
	}
	// A Readiness that has not started answers 503 (NOT_SERVING); liveness
	// answers 200 (SERVING); the app behind the middleware answers 418, and
	// the health server NOT_FOUND for a service it does not know.
	ready, err := probes.NewReadiness(nil)
	if err != nil {
		return []string{err.Error()}
	}
	h := middleware.Probes(ready)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	health := grpchealth.NewServer(ready)
	grpcPort := o.grpcPort()
	// answer returns the probe's HTTP status (a grpc probe's as SERVING 200,
	// NOT_SERVING 503, unknown 418) and what it asks, or a problem.
	answer := func(p *corev1.Probe) (int, string, string) {
		switch {
		case p.HTTPGet != nil:
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.HTTPGet.Path, nil))
			return rec.Code, "path " + strconv.Quote(p.HTTPGet.Path), ""
		case p.GRPC != nil:
			what := "grpc service " + strconv.Quote(ptr.Deref(p.GRPC.Service, ""))
			if grpcPort == "" || strconv.Itoa(int(p.GRPC.Port)) != grpcPort {
				return 0, what, fmt.Sprintf("probes gRPC port %d, not GRPC_ADDR's (%q)", p.GRPC.Port, grpcPort)
			}
			resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: ptr.Deref(p.GRPC.Service, "")})
			switch {
			case err != nil:
				return http.StatusTeapot, what, ""
			case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
				return http.StatusOK, what, ""
			}
			return http.StatusServiceUnavailable, what, ""
		}
		return 0, "", "is neither an httpGet nor a grpc probe"
	}
	var bad []string
	for _, pr := range []struct {
		name string
		p    *corev1.Probe
		want int
	}{{"startupProbe", c.StartupProbe, 200}, {"readinessProbe", c.ReadinessProbe, 503}, {"livenessProbe", c.LivenessProbe, 200}} {
		if pr.p == nil {
			bad = append(bad, pr.name+" is missing")
			continue
		}
		code, what, problem := answer(pr.p)
		switch {
		case problem != "":
			bad = append(bad, pr.name+" "+problem)
		case code == http.StatusTeapot:
			bad = append(bad, fmt.Sprintf("%s %s is not a probe path of the middleware nor a service of the health server", pr.name, what))
		case code != pr.want && pr.want == 200:
			bad = append(bad, fmt.Sprintf("%s %s checks dependencies; it must be a liveness path", pr.name, what))
		case code != pr.want:
			bad = append(bad, fmt.Sprintf("%s %s is not a readiness path", pr.name, what))
		}
	}
	return bad
}

// grpcPort returns the port of the app's GRPC_ADDR (its default when unset),
// or "" when gRPC is off.
func (o objects) grpcPort() string {
	addr, ok := o.appEnv()["GRPC_ADDR"]
	if !ok {
		addr = ":50051"
	}
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// readinessTimeout: the kubelet waits longer than the app's probe timeout, so
// that a slow dependency yields the app's 503 and not a kubelet timeout.
func readinessTimeout(o objects) []string {
	_, c, ok := o.app()
	if !ok || c.ReadinessProbe == nil {
		return nil // probePaths reports it
	}
	appTimeout, err := o.envDuration("PROBE_TIMEOUT", probes.DefaultTimeout)
	if err != nil {
		return []string{"PROBE_TIMEOUT: " + err.Error()}
	}
	kubelet := time.Duration(max(c.ReadinessProbe.TimeoutSeconds, 1)) * time.Second
	if kubelet <= appTimeout {
		return []string{fmt.Sprintf("readinessProbe timeoutSeconds %s does not exceed PROBE_TIMEOUT %s", kubelet, appTimeout)}
	}
	return nil
}

// gracePeriod: the kubelet waits for the preStop sleep, SHUTDOWN_DELAY and
// SHUTDOWN_TIMEOUT before it kills the app.
func gracePeriod(o objects) []string {
	w, c, ok := o.app()
	if !ok {
		return nil
	}
	delay, err1 := o.envDuration("SHUTDOWN_DELAY", 5*time.Second)
	timeout, err2 := o.envDuration("SHUTDOWN_TIMEOUT", 20*time.Second)
	if err1 != nil || err2 != nil {
		return []string{fmt.Sprintf("shutdown settings do not parse: %v %v", err1, err2)}
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := 30 * time.Second
	if g := w.template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if need := preStop + delay + timeout; grace <= need {
		return []string{fmt.Sprintf("terminationGracePeriodSeconds %s does not exceed preStop %s + SHUTDOWN_DELAY %s + SHUTDOWN_TIMEOUT %s", grace, preStop, delay, timeout)}
	}
	return nil
}

// hardened: every container has CPU and memory limits, an ephemeral-storage
// request and limit (a pod that fills its node's disk gets every pod there
// evicted), runs as non-root with a read-only root filesystem, no privilege
// escalation and no capabilities.
func hardened(o objects) []string {
	var bad []string
	for _, w := range o.workloads {
		pod := w.template.Spec
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			where := fmt.Sprintf("%s %s container %s", w.kind, w.name, c.Name)
			if c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				bad = append(bad, where+" has no CPU or memory limit")
			}
			if c.Resources.Requests.StorageEphemeral().IsZero() || c.Resources.Limits.StorageEphemeral().IsZero() {
				bad = append(bad, where+" has no ephemeral-storage request or limit")
			}
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil && pod.SecurityContext != nil {
				nonRoot = pod.SecurityContext.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				bad = append(bad, where+" may run as root")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad = append(bad, where+" has a writable root filesystem")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad = append(bad, where+" allows privilege escalation")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				bad = append(bad, where+" does not drop ALL capabilities")
			}
		}
	}
	return bad
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func selectorsMatch(o objects) []string {
	var bad []string
	for _, w := range o.workloads {
		if !subset(w.selector, w.template.Labels) {
			bad = append(bad, fmt.Sprintf("%s %s selector %v does not match its template's labels %v", w.kind, w.name, w.selector, w.template.Labels))
		}
	}
	return bad
}

func pinnedImages(o objects) []string {
	var bad []string
	for _, w := range o.workloads {
		for _, c := range slices.Concat(w.template.Spec.InitContainers, w.template.Spec.Containers) {
			if strings.Contains(c.Image, "@sha256:") {
				continue
			}
			last := c.Image[strings.LastIndex(c.Image, "/")+1:]
			_, tag, ok := strings.Cut(last, ":")
			if !ok || tag == "latest" {
				bad = append(bad, fmt.Sprintf("%s %s container %s image %q is not pinned to a tag other than latest or a digest", w.kind, w.name, c.Name, c.Image))
			}
		}
	}
	return bad
}

// configKeys: the app's ConfigMap keys and env names are variables it reads.
func configKeys(o objects) []string {
	known, err := appVariables()
	if err != nil {
		return []string{err.Error()}
	}
	known = slices.Concat(known, goRuntimeVariables)
	_, c, ok := o.app()
	if !ok {
		return nil
	}
	var bad []string
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(o.configMaps[ef.ConfigMapRef.Name].Data)) {
			if !slices.Contains(known, ef.Prefix+k) {
				bad = append(bad, fmt.Sprintf("ConfigMap %s key %s is not a variable the app reads", ef.ConfigMapRef.Name, k))
			}
		}
	}
	for _, e := range c.Env {
		if !slices.Contains(known, e.Name) && !expanded(c.Env, e) {
			bad = append(bad, fmt.Sprintf("env %s of the app container is not a variable the app reads", e.Name))
		}
	}
	return bad
}

// expanded reports whether e is a downward-API field that a later variable
// of env expands as $(NAME), as OTEL_RESOURCE_ATTRIBUTES does with the pod's
// name (k8s/components/tracing).
func expanded(env []corev1.EnvVar, e corev1.EnvVar) bool {
	if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
		return false
	}
	i := slices.IndexFunc(env, func(x corev1.EnvVar) bool { return x.Name == e.Name })
	return slices.ContainsFunc(env[i+1:], func(x corev1.EnvVar) bool { return strings.Contains(x.Value, "$("+e.Name+")") })
}

// selected returns the workloads whose templates sel matches.
func (o objects) selected(sel map[string]string) []workload {
	var ws []workload
	for _, w := range o.workloads {
		if subset(sel, w.template.Labels) {
			ws = append(ws, w)
		}
	}
	return ws
}

func servicesAndPDBs(o objects) []string {
	var bad []string
	for _, s := range o.services {
		if len(o.selected(s.Spec.Selector)) == 0 {
			bad = append(bad, fmt.Sprintf("Service %s selector %v matches no pod template", s.Name, s.Spec.Selector))
		}
	}
	for _, p := range o.pdbs {
		if p.Spec.Selector == nil || len(o.selected(p.Spec.Selector.MatchLabels)) == 0 {
			bad = append(bad, fmt.Sprintf("PodDisruptionBudget %s matches no pod template", p.Name))
		}
	}
	return bad
}

func hasPort(c corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

// namedPorts: a Service's named targetPort and a probe's named port exist in
// the containers they point at.
func namedPorts(o objects) []string {
	var bad []string
	for _, s := range o.services {
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.Type != intstr.String {
				continue
			}
			for _, w := range o.selected(s.Spec.Selector) {
				if !slices.ContainsFunc(w.template.Spec.Containers, func(c corev1.Container) bool { return hasPort(c, sp.TargetPort.StrVal) }) {
					bad = append(bad, fmt.Sprintf("Service %s targetPort %q is no port of %s %s", s.Name, sp.TargetPort.StrVal, w.kind, w.name))
				}
			}
		}
	}
	for _, w := range o.workloads {
		for _, c := range w.template.Spec.Containers {
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				var port *intstr.IntOrString
				switch {
				case p == nil:
				case p.HTTPGet != nil:
					port = &p.HTTPGet.Port
				case p.TCPSocket != nil:
					port = &p.TCPSocket.Port
				case p.GRPC != nil && !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == p.GRPC.Port }):
					bad = append(bad, fmt.Sprintf("%s %s container %s probes gRPC port %d, which it does not have", w.kind, w.name, c.Name, p.GRPC.Port))
				}
				if port != nil && port.Type == intstr.String && !hasPort(c, port.StrVal) {
					bad = append(bad, fmt.Sprintf("%s %s container %s probes port %q, which it does not have", w.kind, w.name, c.Name, port.StrVal))
				}
			}
		}
	}
	return bad
}

// references: every ConfigMap, Secret (and key) and ServiceAccount a pod
// template names is in the manifests.
func references(o objects) []string {
	var bad []string
	for _, w := range o.workloads {
		where := w.kind + " " + w.name
		spec := w.template.Spec
		if sa := spec.ServiceAccountName; sa != "" && sa != "default" && !o.accounts[sa] {
			bad = append(bad, fmt.Sprintf("%s uses ServiceAccount %s, which is missing", where, sa))
		}
		secretKey := func(name, key string) {
			s, ok := o.secrets[name]
			if !ok && name == databaseSecret {
				return // supplied outside the manifests
			}
			_, has := s.StringData[key]
			if _, inData := s.Data[key]; !ok || (!has && !inData) {
				bad = append(bad, fmt.Sprintf("%s uses Secret %s key %s, which is missing", where, name, key))
			}
		}
		configKey := func(name, key string) {
			if _, ok := o.configMaps[name].Data[key]; !ok {
				bad = append(bad, fmt.Sprintf("%s uses ConfigMap %s key %s, which is missing", where, name, key))
			}
		}
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			for _, ef := range c.EnvFrom {
				if r := ef.ConfigMapRef; r != nil && (r.Optional == nil || !*r.Optional) {
					if _, ok := o.configMaps[r.Name]; !ok {
						bad = append(bad, fmt.Sprintf("%s uses ConfigMap %s, which is missing", where, r.Name))
					}
				}
				if r := ef.SecretRef; r != nil && (r.Optional == nil || !*r.Optional) {
					if _, ok := o.secrets[r.Name]; !ok {
						bad = append(bad, fmt.Sprintf("%s uses Secret %s, which is missing", where, r.Name))
					}
				}
			}
			for _, e := range c.Env {
				switch vf := e.ValueFrom; {
				case vf == nil:
				case vf.SecretKeyRef != nil:
					secretKey(vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
				case vf.ConfigMapKeyRef != nil:
					configKey(vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
				}
			}
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil {
				if _, ok := o.configMaps[v.ConfigMap.Name]; !ok {
					bad = append(bad, fmt.Sprintf("%s mounts ConfigMap %s, which is missing", where, v.ConfigMap.Name))
				}
			}
			if v.Secret != nil {
				if _, ok := o.secrets[v.Secret.SecretName]; !ok {
					bad = append(bad, fmt.Sprintf("%s mounts Secret %s, which is missing", where, v.Secret.SecretName))
				}
			}
		}
	}
	return bad
}

func headlessServices(o objects) []string {
	var bad []string
	for _, w := range o.workloads {
		if w.kind != "StatefulSet" {
			continue
		}
		i := slices.IndexFunc(o.services, func(s corev1.Service) bool { return s.Name == w.serviceName })
		switch {
		case i < 0:
			bad = append(bad, fmt.Sprintf("StatefulSet %s serviceName %q names no Service", w.name, w.serviceName))
		case o.services[i].Spec.ClusterIP != corev1.ClusterIPNone:
			bad = append(bad, fmt.Sprintf("StatefulSet %s serviceName %q is not headless", w.name, w.serviceName))
		}
	}
	return bad
}

// autoscalerTargets: an autoscaler targets a workload in the manifests, and
// that workload leaves its replica count to the autoscaler (or each apply
// would reset it).
func autoscalerTargets(o objects) []string {
	var bad []string
	for _, h := range o.hpas {
		ref := h.Spec.ScaleTargetRef
		i := slices.IndexFunc(o.workloads, func(w workload) bool { return w.kind == ref.Kind && w.name == ref.Name })
		switch {
		case i < 0:
			bad = append(bad, fmt.Sprintf("HorizontalPodAutoscaler %s targets %s %s, which is missing", h.Name, ref.Kind, ref.Name))
		case o.workloads[i].replicas != nil:
			bad = append(bad, fmt.Sprintf("%s %s sets replicas, which HorizontalPodAutoscaler %s owns: each apply would reset them", ref.Kind, ref.Name, h.Name))
		}
	}
	return bad
}

// databaseFromSecret: the app's DATABASE_URL comes from the Secret
// databaseSecret, never from the ConfigMap or a literal.
func databaseFromSecret(o objects) []string {
	_, c, ok := o.app()
	if !ok {
		return nil
	}
	var bad []string
	if _, ok := o.appEnv()[databaseKey]; ok {
		bad = append(bad, databaseKey+" is set in plain text (a ConfigMap or an env value): it holds a password")
	}
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == databaseKey })
	switch {
	case i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil:
		bad = append(bad, fmt.Sprintf("the app does not read %s from a Secret", databaseKey))
	case c.Env[i].ValueFrom.SecretKeyRef.Name != databaseSecret || c.Env[i].ValueFrom.SecretKeyRef.Key != databaseKey:
		r := c.Env[i].ValueFrom.SecretKeyRef
		bad = append(bad, fmt.Sprintf("the app reads %s from Secret %s key %s, not the documented %s key %s", databaseKey, r.Name, r.Key, databaseSecret, databaseKey))
	case c.Env[i].ValueFrom.SecretKeyRef.Optional != nil && *c.Env[i].ValueFrom.SecretKeyRef.Optional:
		bad = append(bad, fmt.Sprintf("the app's %s Secret is optional: without it the app would start against its default database", databaseKey))
	}
	return bad
}

// restrictedNamespaces: every Namespace enforces, audits and warns about the
// restricted Pod Security Standard.
func restrictedNamespaces(o objects) []string {
	var bad []string
	for _, ns := range o.namespaces {
		for _, mode := range []string{"enforce", "audit", "warn"} {
			if l := "pod-security.kubernetes.io/" + mode; ns.Labels[l] != "restricted" {
				bad = append(bad, fmt.Sprintf("Namespace %s label %s is %q, want restricted", ns.Name, l, ns.Labels[l]))
			}
		}
	}
	return bad
}

// addrPort returns the port of a listen address such as ":8080".
func addrPort(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	return int32(n), err
}

// metricsInside: the app's container port metrics is the admin listener's
// (ADMIN_ADDR), apart from the API port; the Services that carry it are
// ClusterIP; each ServiceMonitor scrapes a port of a Service it selects.
func metricsInside(o objects) []string {
	_, c, ok := o.app()
	if !ok {
		return nil
	}
	var bad []string
	env := o.appEnv()
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, l := range []struct{ variable, port string }{{"HTTP_ADDR", "http"}, {"ADMIN_ADDR", "metrics"}} {
		n, err := addrPort(env[l.variable])
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s %q: %v", l.variable, env[l.variable], err))
		case ports[l.port] == 0:
			bad = append(bad, fmt.Sprintf("the app container has no port %s", l.port))
		case ports[l.port] != n:
			bad = append(bad, fmt.Sprintf("%s listens on %d, the container port %s is %d", l.variable, n, l.port, ports[l.port]))
		}
	}
	if ports["metrics"] != 0 && ports["metrics"] == ports["http"] {
		bad = append(bad, "the metrics port is the API port")
	}
	carries := 0
	for _, s := range o.services {
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.StrVal != "metrics" && (sp.TargetPort.IntVal == 0 || sp.TargetPort.IntVal != ports["metrics"]) {
				continue
			}
			carries++
			if s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
				bad = append(bad, fmt.Sprintf("Service %s (%s) exposes the metrics port outside the cluster", s.Name, s.Spec.Type))
			}
		}
	}
	if carries == 0 {
		bad = append(bad, "no Service carries the metrics port")
	}
	for _, m := range o.monitors {
		var selected []corev1.Service
		for _, s := range o.services {
			if subset(m.Spec.Selector.MatchLabels, s.Labels) {
				selected = append(selected, s)
			}
		}
		if len(selected) == 0 {
			bad = append(bad, fmt.Sprintf("ServiceMonitor %s selects no Service", m.Metadata.Name))
		}
		for _, e := range m.Spec.Endpoints {
			for _, s := range selected {
				if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == e.Port }) {
					bad = append(bad, fmt.Sprintf("ServiceMonitor %s scrapes port %q, which Service %s does not have", m.Metadata.Name, e.Port, s.Name))
				}
			}
		}
	}
	return bad
}

// rollouts: a rollout starts a new pod before it stops an old one.
func rollouts(o objects) []string {
	w, _, ok := o.app()
	if !ok {
		return nil
	}
	ru := w.strategy.RollingUpdate
	if w.strategy.Type == appsv1.RecreateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxSurge == nil ||
		ru.MaxUnavailable.String() != "0" || ru.MaxSurge.String() == "0" || ru.MaxSurge.String() == "0%" {
		return []string{fmt.Sprintf("Deployment %s strategy %+v: want RollingUpdate with maxUnavailable 0 and maxSurge above 0", w.name, w.strategy)}
	}
	return nil
}

// replicas returns the app's replica count, or its autoscaler's minimum.
func (o objects) replicas() int {
	w, _, _ := o.app()
	n := 1
	if w.replicas != nil {
		n = int(*w.replicas)
	}
	for _, h := range o.hpas {
		if h.Spec.ScaleTargetRef.Name == w.name && h.Spec.MinReplicas != nil {
			n = int(*h.Spec.MinReplicas)
		}
	}
	return n
}

// drains: the app runs at least two pods, and its PodDisruptionBudget lets one
// of them go, so that a node drain proceeds without taking the app down.
func drains(o objects) []string {
	w, _, ok := o.app()
	if !ok {
		return nil
	}
	n := o.replicas()
	if n < 2 {
		return []string{fmt.Sprintf("Deployment %s runs %d pod: a drain takes the app down", w.name, n)}
	}
	var bad []string
	found := false
	for _, p := range o.pdbs {
		if p.Spec.Selector == nil || !subset(p.Spec.Selector.MatchLabels, w.template.Labels) {
			continue
		}
		found = true
		allowed := 0
		switch {
		case p.Spec.MaxUnavailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, n, true)
			if err != nil {
				return []string{err.Error()}
			}
			allowed = v
		case p.Spec.MinAvailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, n, true)
			if err != nil {
				return []string{err.Error()}
			}
			allowed = n - v
		}
		if allowed < 1 {
			bad = append(bad, fmt.Sprintf("PodDisruptionBudget %s lets no pod of %d go: a drain never ends", p.Name, n))
		}
		if allowed >= n {
			bad = append(bad, fmt.Sprintf("PodDisruptionBudget %s lets all %d pods go at once", p.Name, n))
		}
	}
	if !found {
		bad = append(bad, fmt.Sprintf("no PodDisruptionBudget covers Deployment %s", w.name))
	}
	return bad
}

// spread: the app's pods spread over nodes and zones; a hard rule honours
// taints, or tainted nodes (control planes, cordoned ones) count as empty
// domains and leave pods pending.
func spread(o objects) []string {
	w, _, ok := o.app()
	if !ok {
		return nil
	}
	var bad []string
	keys := map[string]bool{}
	for _, c := range w.template.Spec.TopologySpreadConstraints {
		if c.LabelSelector == nil || !selects(c.LabelSelector, w.template.Labels) {
			bad = append(bad, fmt.Sprintf("topology spread on %s does not select the app's pods", c.TopologyKey))
			continue
		}
		if c.WhenUnsatisfiable == corev1.DoNotSchedule && (c.NodeTaintsPolicy == nil || *c.NodeTaintsPolicy != corev1.NodeInclusionPolicyHonor) {
			bad = append(bad, fmt.Sprintf("topology spread on %s is DoNotSchedule without nodeTaintsPolicy Honor", c.TopologyKey))
		}
		keys[c.TopologyKey] = true
	}
	for _, k := range []string{corev1.LabelHostname, corev1.LabelTopologyZone} {
		if !keys[k] {
			bad = append(bad, fmt.Sprintf("the app's pods do not spread over %s", k))
		}
	}
	return bad
}

// optionalCache: memcached is an optional check (PROBE_OPTIONAL): the app
// serves without its cache, so a cache outage must not empty the Service.
func optionalCache(o objects) []string {
	if _, _, ok := o.app(); !ok {
		return nil
	}
	env := o.appEnv()
	if !slices.Contains(strings.Split(env["PROBE_OPTIONAL"], ","), "memcached") {
		return []string{fmt.Sprintf("PROBE_OPTIONAL is %q: a memcached outage takes every pod out of the Service", env["PROBE_OPTIONAL"])}
	}
	return nil
}

// TestPolicies: every overlay passes every policy.
func TestPolicies(t *testing.T) {
	for _, dir := range overlays {
		o := decode(t, render(t, dir))
		for _, name := range slices.Sorted(maps.Keys(policies)) {
			t.Run(dir+"/"+name, func(t *testing.T) {
				for _, v := range policies[name](o) {
					t.Error(v)
				}
			})
		}
	}
}

// TestPoliciesCatch: each policy reports a manifest that breaks it.
func TestPoliciesCatch(t *testing.T) {
	appSpec := func(o *objects) *corev1.PodSpec {
		for i := range o.workloads {
			if o.workloads[i].name == appName {
				return &o.workloads[i].template.Spec
			}
		}
		t.Fatal("no app")
		return nil
	}
	appC := func(o *objects) *corev1.Container { return &appSpec(o).Containers[0] }
	netpol := func(o *objects, name string) *networkingv1.NetworkPolicy {
		for i := range o.netpols {
			if o.netpols[i].Name == name {
				return &o.netpols[i]
			}
		}
		t.Fatalf("no NetworkPolicy %s", name)
		return nil
	}
	service := func(o *objects, name string) *corev1.Service {
		for i := range o.services {
			if o.services[i].Name == name {
				return &o.services[i]
			}
		}
		t.Fatalf("no Service %s", name)
		return nil
	}
	setEnv := func(o *objects, k, v string) {
		cm := o.configMaps[appName]
		cm.Data = maps.Clone(cm.Data)
		cm.Data[k] = v
		o.configMaps[appName] = cm
	}
	tcp := func(port intstr.IntOrString) networkingv1.NetworkPolicyPort {
		p := corev1.ProtocolTCP
		return networkingv1.NetworkPolicyPort{Protocol: &p, Port: &port}
	}
	everyNamespace := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
	const prod, kind = "overlays/production", "overlays/kind"
	// A case breaks the policy's intent in the overlay's objects; the policy
	// must then report a line containing want.
	type breakage struct {
		overlay string
		policy  string
		mutate  func(o *objects)
		want    string
	}
	tests := []breakage{
		{prod, "probe paths are the middleware's", func(o *objects) { appC(o).ReadinessProbe.HTTPGet.Path = "/ready" }, `readinessProbe path "/ready" is not a probe path`},
		{prod, "probe paths are the middleware's", func(o *objects) { appC(o).LivenessProbe.HTTPGet.Path = "/readyz" }, "livenessProbe path \"/readyz\" checks dependencies"},
		{prod, "probe paths are the middleware's", func(o *objects) { appC(o).ReadinessProbe.HTTPGet.Path = "/healthz" }, "is not a readiness path"},
		{kind, "probe paths are the middleware's", func(o *objects) { appC(o).ReadinessProbe.GRPC.Service = ptr.To("liveness") }, `readinessProbe grpc service "liveness" is not a readiness path`},
		{kind, "probe paths are the middleware's", func(o *objects) { appC(o).ReadinessProbe.GRPC.Service = ptr.To("ready") }, `readinessProbe grpc service "ready" is not a probe path of the middleware nor a service of the health server`},
		{kind, "probe paths are the middleware's", func(o *objects) { appC(o).ReadinessProbe.GRPC.Port = 8080 }, "readinessProbe probes gRPC port 8080, not GRPC_ADDR's"},
		{kind, "probe paths are the middleware's", func(o *objects) { setEnv(o, "GRPC_ADDR", "") }, "readinessProbe probes gRPC port 50051, not GRPC_ADDR's"},
		{kind, "named ports exist", func(o *objects) { appC(o).ReadinessProbe.GRPC.Port = 50052 }, "probes gRPC port 50052, which it does not have"},
		{prod, "readiness timeout exceeds the app's", func(o *objects) { appC(o).ReadinessProbe.TimeoutSeconds = 1 }, "does not exceed PROBE_TIMEOUT"},
		{prod, "grace period exceeds the shutdown", func(o *objects) { g := int64(25); appSpec(o).TerminationGracePeriodSeconds = &g }, "does not exceed"},
		{prod, "grace period exceeds the shutdown", func(o *objects) {
			appC(o).Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}}}
		}, "preStop 10s"},
		{prod, "containers are limited and locked down", func(o *objects) { delete(appC(o).Resources.Limits, corev1.ResourceMemory) }, "no CPU or memory limit"},
		{prod, "containers are limited and locked down", func(o *objects) {
			delete(appC(o).Resources.Limits, corev1.ResourceEphemeralStorage)
		}, "no ephemeral-storage request or limit"},
		{kind, "containers are limited and locked down", func(o *objects) {
			for i := range o.workloads {
				if o.workloads[i].name == "postgres" {
					delete(o.workloads[i].template.Spec.InitContainers[0].Resources.Requests, corev1.ResourceEphemeralStorage)
				}
			}
		}, "StatefulSet postgres container passwd has no ephemeral-storage request or limit"},
		{prod, "containers are limited and locked down", func(o *objects) {
			f := false
			appC(o).SecurityContext.ReadOnlyRootFilesystem = &f
		}, "writable root filesystem"},
		{prod, "containers are limited and locked down", func(o *objects) {
			appC(o).SecurityContext.RunAsNonRoot = nil
			appSpec(o).SecurityContext.RunAsNonRoot = nil
		}, "may run as root"},
		{prod, "selectors match their templates", func(o *objects) { o.workloads[0].selector = map[string]string{"app": "other"} }, "does not match its template"},
		{prod, "images are pinned", func(o *objects) { appC(o).Image = "gok8s:latest" }, "is not pinned"},
		{prod, "images are pinned", func(o *objects) { appC(o).Image = "registry:5000/gok8s" }, "is not pinned"},
		{prod, "ConfigMap keys are app variables", func(o *objects) {
			cm := o.configMaps[appName]
			cm.Data = maps.Clone(cm.Data)
			cm.Data["PROBE_TIMOUT"] = "1s"
			o.configMaps[appName] = cm
		}, "key PROBE_TIMOUT is not a variable"},
		{prod, "Services and PDBs select pods", func(o *objects) { o.services[0].Spec.Selector = map[string]string{"app": "nope"} }, "matches no pod template"},
		{prod, "Services and PDBs select pods", func(o *objects) { o.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"x": "y"} }, "PodDisruptionBudget"},
		{prod, "named ports exist", func(o *objects) { appC(o).ReadinessProbe.HTTPGet.Port = intstr.FromString("web") }, `probes port "web"`},
		{prod, "named ports exist", func(o *objects) {
			for i := range o.services {
				o.services[i].Spec.Ports[0].TargetPort = intstr.FromString("nope")
			}
		}, `targetPort "nope"`},
		{kind, "referenced objects exist", func(o *objects) {
			s := o.secrets[databaseSecret]
			s.StringData = maps.Clone(s.StringData)
			delete(s.StringData, databaseKey)
			o.secrets[databaseSecret] = s
		}, "Secret gok8s-database key DATABASE_URL, which is missing"},
		{kind, "referenced objects exist", func(o *objects) {
			for _, w := range o.workloads {
				for _, e := range w.template.Spec.Containers[0].Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.Name == "POSTGRES_PASSWORD" {
						e.ValueFrom.SecretKeyRef.Name = "postgres-credentials"
					}
				}
			}
		}, "uses Secret postgres-credentials key POSTGRES_PASSWORD, which is missing"},
		{prod, "referenced objects exist", func(o *objects) { delete(o.accounts, appName) }, "ServiceAccount gok8s, which is missing"},
		{prod, "referenced objects exist", func(o *objects) { delete(o.configMaps, appName) }, "ConfigMap gok8s, which is missing"},
		{kind, "StatefulSets name a headless Service", func(o *objects) {
			for i := range o.services {
				o.services[i].Spec.ClusterIP = ""
			}
		}, "is not headless"},
		{prod, "autoscalers target an existing Deployment", func(o *objects) { o.hpas[0].Spec.ScaleTargetRef.Name = "gone" }, "targets Deployment gone"},
		{prod, "autoscalers target an existing Deployment", func(o *objects) {
			three := int32(3)
			o.workloads[0].replicas = &three
		}, "sets replicas, which HorizontalPodAutoscaler gok8s owns"},
		{prod, "the app reads DATABASE_URL from its Secret", func(o *objects) {
			appC(o).Env[0].ValueFrom.SecretKeyRef.Name = "db"
		}, "from Secret db key DATABASE_URL, not the documented gok8s-database"},
		{prod, "the app reads DATABASE_URL from its Secret", func(o *objects) { setEnv(o, "DATABASE_URL", "postgres://x") }, "set in plain text"},
		{prod, "namespaces enforce restricted pods", func(o *objects) {
			delete(o.namespaces[0].Labels, "pod-security.kubernetes.io/enforce")
		}, `label pod-security.kubernetes.io/enforce is ""`},
		{prod, "metrics stay inside the cluster", func(o *objects) { setEnv(o, "ADMIN_ADDR", ":9091") }, "ADMIN_ADDR listens on 9091, the container port metrics is 9090"},
		{prod, "metrics stay inside the cluster", func(o *objects) { setEnv(o, "ADMIN_ADDR", ":8080") }, "ADMIN_ADDR listens on 8080"},
		{prod, "metrics stay inside the cluster", func(o *objects) {
			service(o, appName+"-metrics").Spec.Type = corev1.ServiceTypeNodePort
		}, "exposes the metrics port outside the cluster"},
		{"testdata/monitoring", "metrics stay inside the cluster", func(o *objects) { o.monitors[0].Spec.Endpoints[0].Port = "web" }, `scrapes port "web"`},
		{"testdata/monitoring", "metrics stay inside the cluster", func(o *objects) {
			o.monitors[0].Spec.Selector.MatchLabels = map[string]string{"x": "y"}
		}, "selects no Service"},
		{prod, "rollouts keep every pod serving", func(o *objects) {
			one := intstr.FromInt32(1)
			o.workloads[0].strategy.RollingUpdate.MaxUnavailable = &one
		}, "want RollingUpdate with maxUnavailable 0"},
		{prod, "a drain can proceed", func(o *objects) {
			zero := intstr.FromInt32(0)
			o.pdbs[0].Spec.MaxUnavailable = &zero
		}, "lets no pod of 3 go"},
		{prod, "a drain can proceed", func(o *objects) {
			one := int32(1)
			o.hpas[0].Spec.MinReplicas = &one
		}, "runs 1 pod"},
		{prod, "a drain can proceed", func(o *objects) { o.pdbs = nil }, "no PodDisruptionBudget covers"},
		{prod, "app pods spread over nodes and zones", func(o *objects) {
			appSpec(o).TopologySpreadConstraints = appSpec(o).TopologySpreadConstraints[:1]
		}, "do not spread over topology.kubernetes.io/zone"},
		{prod, "app pods spread over nodes and zones", func(o *objects) {
			appSpec(o).TopologySpreadConstraints[0].NodeTaintsPolicy = nil
		}, "DoNotSchedule without nodeTaintsPolicy Honor"},
		{prod, "a cache outage keeps pods in the Service", func(o *objects) { setEnv(o, "PROBE_OPTIONAL", "") }, `PROBE_OPTIONAL is ""`},
		{prod, "network: default deny", func(o *objects) {
			o.netpols = slices.DeleteFunc(o.netpols, func(n networkingv1.NetworkPolicy) bool { return n.Name == "default-deny" })
		}, "no NetworkPolicy denies all ingress and egress"},
		{prod, "network: default deny", func(o *objects) {
			netpol(o, "default-deny").Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		}, "no NetworkPolicy denies all ingress and egress"},
		{kind, "network: every pod has its policy", func(o *objects) {
			o.netpols = slices.DeleteFunc(o.netpols, func(n networkingv1.NetworkPolicy) bool { return n.Name == "memcached" })
		}, "Deployment memcached: no NetworkPolicy selects its pods"},
		{prod, "network: no rule allows all", func(o *objects) {
			np := netpol(o, appName)
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{})
		}, "ingress rule 2 allows all ingress"},
		{prod, "network: no rule allows all", func(o *objects) {
			np := netpol(o, appName)
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: everyNamespace})
		}, "egress rule 2 allows all egress"},
		{prod, "network: no rule allows all", func(o *objects) {
			np := netpol(o, "default-deny")
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(intstr.FromInt32(443))}}}
		}, "allows traffic for every pod of the namespace"},
		{prod, "network: admitted ports are pods' ports", func(o *objects) {
			netpol(o, appName).Spec.Ingress[0].Ports[0] = tcp(intstr.FromString("web"))
		}, "admits web/TCP, which Deployment gok8s has no container port for"},
		{prod, "network: admitted ports are pods' ports", func(o *objects) {
			netpol(o, appName).Spec.Ingress = netpol(o, appName).Spec.Ingress[1:]
		}, "Service gok8s port http: no NetworkPolicy admits traffic to Deployment gok8s port 8080"},
		{kind, "network: admitted ports are pods' ports", func(o *objects) {
			netpol(o, "postgres").Spec.Ingress[0].Ports[0] = tcp(intstr.FromInt32(5433))
		}, "admits 5433/TCP, which StatefulSet postgres has no container port for"},
		{prod, "network: the app reaches only its deps", func(o *objects) {
			np := netpol(o, appName)
			np.Spec.Egress[1].Ports = append(np.Spec.Egress[1].Ports, tcp(intstr.FromInt32(443)))
		}, "reach 443/TCP, which is neither DNS nor a dependency"},
		{prod, "network: the app reaches only its deps", func(o *objects) {
			netpol(o, appName).Spec.Egress[0].To = everyNamespace
		}, "port 53 of more than the cluster DNS"},
		{prod, "network: the app reaches only its deps", func(o *objects) {
			np := netpol(o, appName)
			np.Spec.Egress[1].Ports = np.Spec.Egress[1].Ports[:1]
		}, "no NetworkPolicy lets the app reach memcached memcached.cache.svc:11211 on 11211/TCP"},
		{prod, "network: the app reaches only its deps", func(o *objects) {
			netpol(o, appName).Spec.Egress[1].Ports = nil
		}, "egress rule 1 lets the app reach every port"},
		{kind, "network: the app reaches only its deps", func(o *objects) {
			s := o.secrets[databaseSecret]
			s.StringData = maps.Clone(s.StringData)
			s.StringData[databaseKey] = "postgres://u:p@elsewhere:6432/db"
			o.secrets[databaseSecret] = s
		}, "no NetworkPolicy lets the app reach PostgreSQL on 6432/TCP"},
		{kind, "network: backends admit only the app", func(o *objects) {
			netpol(o, "postgres").Spec.Ingress[0].From = everyNamespace
		}, "admits sources outside the app's pods to StatefulSet postgres"},
		{kind, "network: backends admit only the app", func(o *objects) {
			netpol(o, "postgres").Spec.Ingress[0].From[0].PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "memcached"}}
		}, "which are not the app's"},
		{kind, "network: backends admit only the app", func(o *objects) {
			netpol(o, "memcached").Spec.Ingress[0].From[0].PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "gok8s"}}
		}, "admits pods besides the app's to Deployment memcached"},
		{kind, "network: backends admit only the app", func(o *objects) {
			netpol(o, "memcached").Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(intstr.FromInt32(53))}}}
		}, "lets Deployment memcached open connections"},
		{kind, "network: Prometheus reaches only metrics", func(o *objects) {
			netpol(o, "prometheus").Spec.Egress[1].Ports = []networkingv1.NetworkPolicyPort{tcp(intstr.FromString("http"))}
		}, "reach the app on http/TCP, not only its metrics port"},
		{kind, "network: Prometheus reaches only metrics", func(o *objects) {
			netpol(o, "prometheus").Spec.Egress[0].Ports = append(netpol(o, "prometheus").Spec.Egress[0].Ports, tcp(intstr.FromInt32(5432)))
		}, "neither the app's metrics nor the API server"},
		{kind, "network: the app reaches only its deps", func(o *objects) {
			np := netpol(o, appName)
			np.Spec.Egress = np.Spec.Egress[:2]
		}, "no NetworkPolicy lets the app reach the OTLP receiver jaeger:4318 on 4318/TCP"},
		{kind, "network: Jaeger takes spans from the app", func(o *objects) {
			netpol(o, "jaeger").Spec.Ingress[0].From = nil
		}, "admits sources besides the app's pods to Deployment jaeger on otlp-http/TCP"},
		{kind, "network: Jaeger takes spans from the app", func(o *objects) {
			netpol(o, "jaeger").Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(intstr.FromInt32(443))}}}
		}, "lets Deployment jaeger open connections"},
		{kind, "ConfigMap keys are app variables", func(o *objects) {
			appSpec(o).Containers[0].Env = append(appSpec(o).Containers[0].Env, corev1.EnvVar{Name: "HOST_IP",
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}})
		}, "env HOST_IP of the app container is not a variable the app reads"},
	}
	for name := range policies {
		if !slices.ContainsFunc(tests, func(tt breakage) bool { return tt.policy == name }) {
			t.Errorf("policy %q has no case here: show that it can fail", name)
		}
	}
	for _, tt := range tests {
		t.Run(tt.overlay+"/"+tt.policy+"/"+tt.want, func(t *testing.T) {
			o := decode(t, render(t, tt.overlay))
			if got := policies[tt.policy](o); len(got) != 0 {
				t.Fatalf("unbroken manifests already fail: %v", got)
			}
			tt.mutate(&o)
			got := policies[tt.policy](o)
			if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, tt.want) }) {
				t.Errorf("policy reported %q, want a line containing %q", got, tt.want)
			}
		})
	}
}

// TestOverlayContents: production renders the app alone, without a Secret (its
// database URL comes from the team's Secret manager) and without a database or
// a cache; kind adds the development backends and Prometheus, and runs three
// app replicas over its two workers.
func TestOverlayContents(t *testing.T) {
	tests := []struct {
		dir       string
		workloads []string
		secrets   []string
		replicas  int
	}{
		{"overlays/production", []string{"Deployment " + appName}, nil, 3},
		{"testdata/monitoring", []string{"Deployment " + appName}, nil, 3},
		{"overlays/kind", []string{"Deployment " + appName, "Deployment jaeger", "Deployment memcached", "Deployment prometheus", "StatefulSet postgres"}, []string{databaseSecret}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			objs := render(t, tt.dir)
			o := decode(t, objs)
			var workloads []string
			for _, w := range o.workloads {
				workloads = append(workloads, w.kind+" "+w.name)
			}
			slices.Sort(workloads)
			if !slices.Equal(workloads, tt.workloads) {
				t.Errorf("workloads %q, want %q", workloads, tt.workloads)
			}
			var secrets []string
			for _, u := range objs {
				if u.GetKind() == "Secret" || u.GetKind() == "PersistentVolumeClaim" {
					secrets = append(secrets, u.GetName())
				}
			}
			if !slices.Equal(secrets, tt.secrets) {
				t.Errorf("Secrets and volume claims %q, want %q", secrets, tt.secrets)
			}
			if n := o.replicas(); n != tt.replicas {
				t.Errorf("the app runs %d replicas, want %d", n, tt.replicas)
			}
		})
	}
}

// TestKindBackendsOnControlPlane: in the kind overlay PostgreSQL, memcached,
// Prometheus and Jaeger run on the control-plane node (selected, and
// tolerating its taint), so that draining a worker moves app pods only (and
// Prometheus keeps watching the alerts through the drain); the app stays off it.
func TestKindBackendsOnControlPlane(t *testing.T) {
	const role = "node-role.kubernetes.io/control-plane"
	o := decode(t, render(t, "overlays/kind"))
	for _, w := range o.workloads {
		spec := w.template.Spec
		_, selected := spec.NodeSelector[role]
		tolerates := slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
			return tl.Key == role && tl.Effect == corev1.TaintEffectNoSchedule
		})
		backend := slices.Contains([]string{"postgres", "memcached", "prometheus", "jaeger"}, w.name)
		if selected != backend || tolerates != backend {
			t.Errorf("%s %s: on the control plane %v (selected %v, tolerates its taint %v), want %v", w.kind, w.name, selected && tolerates, selected, tolerates, backend)
		}
	}
}
