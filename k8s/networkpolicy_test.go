package k8s_test

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The cluster DNS the app may reach: kube-dns's pods in kube-system, as every
// conformant cluster labels them.
var (
	dnsNamespace = map[string]string{"kubernetes.io/metadata.name": "kube-system"}
	dnsPods      = map[string]string{"k8s-app": "kube-dns"}
)

// selects reports whether sel selects the labels; an empty selector selects
// everything, as in a NetworkPolicy.
func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// isEmpty reports whether sel selects everything.
func isEmpty(sel *metav1.LabelSelector) bool {
	return sel != nil && len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0
}

// policiesOf returns the policies that select w's pods by name or label,
// leaving out the default deny (an empty podSelector).
func (o objects) policiesOf(w workload) []networkingv1.NetworkPolicy {
	var ps []networkingv1.NetworkPolicy
	for _, np := range o.netpols {
		if !isEmpty(&np.Spec.PodSelector) && selects(&np.Spec.PodSelector, w.template.Labels) {
			ps = append(ps, np)
		}
	}
	return ps
}

// portMatches reports whether the policy port pp covers the container port cp.
func portMatches(pp networkingv1.NetworkPolicyPort, cp corev1.ContainerPort) bool {
	proto := corev1.ProtocolTCP
	if pp.Protocol != nil {
		proto = *pp.Protocol
	}
	if proto != cmpProtocol(cp.Protocol) {
		return false
	}
	switch {
	case pp.Port == nil:
		return true
	case pp.Port.Type == intstr.String:
		return pp.Port.StrVal == cp.Name
	case pp.EndPort != nil:
		return cp.ContainerPort >= pp.Port.IntVal && cp.ContainerPort <= *pp.EndPort
	}
	return pp.Port.IntVal == cp.ContainerPort
}

func cmpProtocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func portString(pp networkingv1.NetworkPolicyPort) string {
	proto := "TCP"
	if pp.Protocol != nil {
		proto = string(*pp.Protocol)
	}
	if pp.Port == nil {
		return "every " + proto + " port"
	}
	return pp.Port.String() + "/" + proto
}

// denyByDefault: the namespace has a policy that selects every pod, names both
// directions, and allows nothing.
func denyByDefault(o objects) []string {
	if len(o.workloads) == 0 {
		return nil
	}
	for _, np := range o.netpols {
		s := np.Spec
		if isEmpty(&s.PodSelector) && slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeIngress) &&
			slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeEgress) && len(s.Ingress) == 0 && len(s.Egress) == 0 {
			return nil
		}
	}
	return []string{"no NetworkPolicy denies all ingress and egress of every pod (podSelector {}, policyTypes [Ingress, Egress], no rules)"}
}

// everyPodSelected: each workload's pods are selected by a policy of their
// own, beyond the default deny, so what they may do is written down.
func everyPodSelected(o objects) []string {
	var bad []string
	for _, w := range o.workloads {
		if len(o.policiesOf(w)) == 0 {
			bad = append(bad, fmt.Sprintf("%s %s: no NetworkPolicy selects its pods %v", w.kind, w.name, w.template.Labels))
		}
	}
	return bad
}

// allPeers reports whether peers admit every source or destination.
func allPeers(peers []networkingv1.NetworkPolicyPeer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil && (p.IPBlock.CIDR == "0.0.0.0/0" || p.IPBlock.CIDR == "::/0") && len(p.IPBlock.Except) == 0 {
			return true
		}
		if p.NamespaceSelector != nil && isEmpty(p.NamespaceSelector) && (p.PodSelector == nil || isEmpty(p.PodSelector)) {
			return true
		}
	}
	return false
}

// noAllowAll: no rule admits every peer on every port, and no policy opens
// anything for every pod of the namespace.
func noAllowAll(o objects) []string {
	var bad []string
	for _, np := range o.netpols {
		if isEmpty(&np.Spec.PodSelector) && (len(np.Spec.Ingress) > 0 || len(np.Spec.Egress) > 0) {
			bad = append(bad, fmt.Sprintf("NetworkPolicy %s allows traffic for every pod of the namespace", np.Name))
		}
		for i, r := range np.Spec.Ingress {
			if len(r.Ports) == 0 && allPeers(r.From) {
				bad = append(bad, fmt.Sprintf("NetworkPolicy %s ingress rule %d allows all ingress", np.Name, i))
			}
		}
		for i, r := range np.Spec.Egress {
			if len(r.Ports) == 0 && allPeers(r.To) {
				bad = append(bad, fmt.Sprintf("NetworkPolicy %s egress rule %d allows all egress", np.Name, i))
			}
		}
	}
	return bad
}

// containerPorts returns the ports of w's containers.
func containerPorts(w workload) []corev1.ContainerPort {
	var ps []corev1.ContainerPort
	for _, c := range w.template.Spec.Containers {
		ps = append(ps, c.Ports...)
	}
	return ps
}

// ingressPortsExist: every port a policy admits is a port of the pods it
// selects, and every port a Service sends traffic to is admitted.
func ingressPortsExist(o objects) []string {
	var bad []string
	for _, w := range o.workloads {
		ports := containerPorts(w)
		var admitted []networkingv1.NetworkPolicyPort
		allPorts := false
		for _, np := range o.policiesOf(w) {
			for _, r := range np.Spec.Ingress {
				allPorts = allPorts || len(r.Ports) == 0
				for _, pp := range r.Ports {
					admitted = append(admitted, pp)
					if !slices.ContainsFunc(ports, func(cp corev1.ContainerPort) bool { return portMatches(pp, cp) }) {
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s admits %s, which %s %s has no container port for", np.Name, portString(pp), w.kind, w.name))
					}
				}
			}
		}
		for _, s := range o.services {
			if !subset(s.Spec.Selector, w.template.Labels) {
				continue
			}
			for _, sp := range s.Spec.Ports {
				i := slices.IndexFunc(ports, func(cp corev1.ContainerPort) bool {
					if sp.TargetPort.Type == intstr.String {
						return cp.Name == sp.TargetPort.StrVal
					}
					return cp.ContainerPort == sp.TargetPort.IntVal || (sp.TargetPort.IntVal == 0 && cp.ContainerPort == sp.Port)
				})
				if i < 0 {
					continue // namedPorts reports it
				}
				if !allPorts && !slices.ContainsFunc(admitted, func(pp networkingv1.NetworkPolicyPort) bool { return portMatches(pp, ports[i]) }) {
					bad = append(bad, fmt.Sprintf("Service %s port %s: no NetworkPolicy admits traffic to %s %s port %d", s.Name, sp.Name, w.kind, w.name, ports[i].ContainerPort))
				}
			}
		}
	}
	return bad
}

// appDependencies returns the TCP ports the app connects to: its database's
// (from the dev Secret's DATABASE_URL where the manifests carry one, else
// PostgreSQL's default), each memcached server's, and its OTLP receiver's
// when it exports traces.
func (o objects) appDependencies() (map[int32]string, error) {
	deps := map[int32]string{5432: "PostgreSQL"}
	if raw := o.secrets[databaseSecret].StringData[databaseKey]; raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s does not parse as a URL", databaseKey)
		}
		if p := u.Port(); p != "" {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s port %q: %w", databaseKey, p, err)
			}
			deps = map[int32]string{int32(n): "PostgreSQL"}
		}
	}
	for s := range strings.SplitSeq(o.appEnv()["MEMCACHED_SERVERS"], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		_, p, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("MEMCACHED_SERVERS %q: %w", s, err)
		}
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("MEMCACHED_SERVERS %q: %w", s, err)
		}
		deps[int32(n)] = "memcached " + s
	}
	env := o.appEnv()
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		raw := env[name]
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%s %q is not a URL", name, raw)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		n, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s %q: port %q", name, raw, port)
		}
		deps[int32(n)] = "the OTLP receiver " + u.Host
		break // the traces endpoint wins
	}
	return deps, nil
}

// isClusterDNS reports whether peers are exactly the cluster's DNS pods.
func isClusterDNS(peers []networkingv1.NetworkPolicyPeer) bool {
	return len(peers) > 0 && !slices.ContainsFunc(peers, func(p networkingv1.NetworkPolicyPeer) bool {
		return p.IPBlock != nil || p.NamespaceSelector == nil || p.PodSelector == nil ||
			!selects(p.NamespaceSelector, dnsNamespace) || !selects(p.PodSelector, dnsPods) ||
			isEmpty(p.NamespaceSelector) || isEmpty(p.PodSelector)
	})
}

// appEgress: the app may open connections to the cluster DNS (UDP and TCP 53,
// kube-dns pods only), its database's port and its memcached servers' ports;
// to nothing else, and it can reach each of them.
func appEgress(o objects) []string {
	app, _, ok := o.app()
	if !ok {
		return nil
	}
	deps, err := o.appDependencies()
	if err != nil {
		return []string{err.Error()}
	}
	var bad []string
	reached := map[string]bool{}
	for _, np := range o.policiesOf(app) {
		for i, r := range np.Spec.Egress {
			if len(r.Ports) == 0 {
				bad = append(bad, fmt.Sprintf("NetworkPolicy %s egress rule %d lets the app reach every port", np.Name, i))
			}
			for _, pp := range r.Ports {
				proto := "TCP"
				if pp.Protocol != nil {
					proto = string(*pp.Protocol)
				}
				switch {
				case pp.Port == nil || pp.Port.Type == intstr.String || pp.EndPort != nil:
					bad = append(bad, fmt.Sprintf("NetworkPolicy %s lets the app reach %s: use the dependencies' port numbers", np.Name, portString(pp)))
				case pp.Port.IntVal == 53:
					if !isClusterDNS(r.To) {
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s lets the app reach port 53 of more than the cluster DNS (%v in %v)", np.Name, dnsPods, dnsNamespace))
					}
					reached["53/"+proto] = true
				case deps[pp.Port.IntVal] != "" && proto == "TCP":
					reached[portString(pp)] = true
				default:
					bad = append(bad, fmt.Sprintf("NetworkPolicy %s lets the app reach %s, which is neither DNS nor a dependency in its configuration", np.Name, portString(pp)))
				}
			}
		}
	}
	need := map[string]string{"53/UDP": "DNS", "53/TCP": "DNS"}
	for p, what := range deps {
		need[fmt.Sprintf("%d/TCP", p)] = what
	}
	for p, what := range need {
		if !reached[p] {
			bad = append(bad, fmt.Sprintf("no NetworkPolicy lets the app reach %s on %s", what, p))
		}
	}
	slices.Sort(bad)
	return bad
}

// monitoringComponent is the component label of k8s/components/prometheus'
// workload: it scrapes the app rather than serving it.
const monitoringComponent = "monitoring"

// tracingComponent is the component label of k8s/components/jaeger's
// workload: it serves its UI to anyone besides taking the app's spans.
const tracingComponent = "tracing"

// backendsAcceptOnlyTheApp: every workload other than the app, monitoring and
// the trace viewer (PostgreSQL, memcached) admits only the app's pods and
// connects nowhere.
func backendsAcceptOnlyTheApp(o objects) []string {
	app, _, ok := o.app()
	if !ok {
		return nil
	}
	var bad []string
	for _, w := range o.workloads {
		if (w.name == app.name && w.kind == app.kind) || w.template.Labels["app.kubernetes.io/component"] == monitoringComponent ||
			w.template.Labels["app.kubernetes.io/component"] == tracingComponent {
			continue
		}
		for _, np := range o.policiesOf(w) {
			if len(np.Spec.Egress) > 0 {
				bad = append(bad, fmt.Sprintf("NetworkPolicy %s lets %s %s open connections", np.Name, w.kind, w.name))
			}
			for i, r := range np.Spec.Ingress {
				if len(r.From) == 0 {
					bad = append(bad, fmt.Sprintf("NetworkPolicy %s ingress rule %d admits any source to %s %s", np.Name, i, w.kind, w.name))
				}
				for _, p := range r.From {
					switch {
					case p.IPBlock != nil || p.NamespaceSelector != nil || p.PodSelector == nil:
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s admits sources outside the app's pods to %s %s", np.Name, w.kind, w.name))
					case !selects(p.PodSelector, app.template.Labels):
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s admits pods %v to %s %s, which are not the app's", np.Name, p.PodSelector.MatchLabels, w.kind, w.name))
					case isEmpty(p.PodSelector) || slices.ContainsFunc(o.workloads, func(x workload) bool {
						return x.name != app.name && selects(p.PodSelector, x.template.Labels)
					}):
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s admits pods besides the app's to %s %s", np.Name, w.kind, w.name))
					}
				}
			}
		}
	}
	return bad
}

// monitoringEgress: a monitoring workload (Prometheus) connects only to the
// app's metrics port and to the Kubernetes API (443, or 6443 as policy agents
// see it after the Service's translation), for pod discovery.
func monitoringEgress(o objects) []string {
	app, _, ok := o.app()
	if !ok {
		return nil
	}
	var bad []string
	for _, w := range o.workloads {
		if w.template.Labels["app.kubernetes.io/component"] != monitoringComponent {
			continue
		}
		for _, np := range o.policiesOf(w) {
			for i, r := range np.Spec.Egress {
				toApp := len(r.To) > 0
				for _, p := range r.To {
					toApp = toApp && p.IPBlock == nil && p.NamespaceSelector == nil && p.PodSelector != nil &&
						!isEmpty(p.PodSelector) && selects(p.PodSelector, app.template.Labels)
				}
				for _, pp := range r.Ports {
					metrics := pp.Port != nil && pp.Port.String() == "metrics"
					api := pp.Port != nil && (pp.Port.IntValue() == 443 || pp.Port.IntValue() == 6443)
					switch {
					case toApp && !metrics:
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s egress rule %d lets %s %s reach the app on %s, not only its metrics port", np.Name, i, w.kind, w.name, portString(pp)))
					case !toApp && !api:
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s egress rule %d lets %s %s reach %s, neither the app's metrics nor the API server", np.Name, i, w.kind, w.name, portString(pp)))
					}
				}
				if len(r.Ports) == 0 {
					bad = append(bad, fmt.Sprintf("NetworkPolicy %s egress rule %d lets %s %s reach any port", np.Name, i, w.kind, w.name))
				}
			}
		}
	}
	return bad
}

// tracingBackend: the trace viewer (Jaeger) takes OTLP from the app's pods
// only, serves any client only on its query port, and connects nowhere.
func tracingBackend(o objects) []string {
	app, _, ok := o.app()
	if !ok {
		return nil
	}
	var bad []string
	for _, w := range o.workloads {
		if w.template.Labels["app.kubernetes.io/component"] != tracingComponent {
			continue
		}
		for _, np := range o.policiesOf(w) {
			if len(np.Spec.Egress) > 0 {
				bad = append(bad, fmt.Sprintf("NetworkPolicy %s lets %s %s open connections", np.Name, w.kind, w.name))
			}
			for i, r := range np.Spec.Ingress {
				fromApp := len(r.From) > 0 && !slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool {
					return p.IPBlock != nil || p.NamespaceSelector != nil || p.PodSelector == nil || isEmpty(p.PodSelector) ||
						!selects(p.PodSelector, app.template.Labels)
				})
				for _, pp := range r.Ports {
					if !fromApp && (pp.Port == nil || pp.Port.String() != "query") {
						bad = append(bad, fmt.Sprintf("NetworkPolicy %s ingress rule %d admits sources besides the app's pods to %s %s on %s, not only its query port", np.Name, i, w.kind, w.name, portString(pp)))
					}
				}
				if len(r.Ports) == 0 {
					bad = append(bad, fmt.Sprintf("NetworkPolicy %s ingress rule %d admits every port of %s %s", np.Name, i, w.kind, w.name))
				}
			}
		}
	}
	return bad
}
