//go:build kind

package disruption_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// networkPolicy: a pod without the app's labels cannot reach PostgreSQL nor
// memcached while the policies exist, and reaches both without them; then the
// policies are restored. The app serves throughout (under load).
func (k *kind) networkPolicy(t testing.TB) string {
	image := env("PROBE_IMAGE", "memcached:1.6-alpine")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "np-probe", Namespace: ns, Labels: map[string]string{"app.kubernetes.io/name": "np-probe"}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "probe", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "600"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	_ = k.cs.CoreV1().Pods(ns).Delete(k.ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	k.poll("old np-probe gone", time.Minute, 250*time.Millisecond, func() bool {
		_, err := k.cs.CoreV1().Pods(ns).Get(k.ctx, pod.Name, metav1.GetOptions{})
		return err != nil
	})
	if _, err := k.cs.CoreV1().Pods(ns).Create(k.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("np-probe pod: %v", err)
	}
	defer func() {
		_ = k.cs.CoreV1().Pods(ns).Delete(context.WithoutCancel(k.ctx), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	k.poll("np-probe running", time.Minute, 250*time.Millisecond, func() bool {
		p, err := k.cs.CoreV1().Pods(ns).Get(k.ctx, pod.Name, metav1.GetOptions{})
		return err == nil && podReady(p)
	})

	targets := []string{"postgres 5432", "memcached 11211"}
	// reach reports whether np-probe opens a TCP connection to target within 2 s.
	reach := func(target string) bool {
		host, port, _ := strings.Cut(target, " ")
		script := fmt.Sprintf(`if command -v nc >/dev/null; then nc -z -w 2 %[1]s %[2]s; else timeout 2 bash -c '</dev/tcp/%[1]s/%[2]s'; fi`, host, port)
		_, err := k.kubectl(15*time.Second, "exec", pod.Name, "--", "sh", "-c", script)
		return err == nil
	}
	// holds polls until every target is reachable (want) twice in a row.
	holds := func(what string, want bool) time.Duration {
		streak := 0
		return k.poll(what, 45*time.Second, time.Second, func() bool {
			for _, tg := range targets {
				if reach(tg) != want {
					streak = 0
					return false
				}
			}
			streak++
			return streak == 2
		})
	}
	var notes []string
	d := holds("np-probe blocked from postgres and memcached", false)
	notes = append(notes, fmt.Sprintf("np-probe blocked from %s (held twice, %.1fs)", strings.Join(targets, ", "), d.Seconds()))

	policies, err := k.cs.NetworkingV1().NetworkPolicies(ns).List(k.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(policies.Items) == 0 {
		t.Fatal("no NetworkPolicy in namespace " + ns)
	}
	restore := func() {
		for _, p := range policies.Items {
			p := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns, Labels: p.Labels, Annotations: p.Annotations}, Spec: p.Spec}
			if _, err := k.cs.NetworkingV1().NetworkPolicies(ns).Create(context.WithoutCancel(k.ctx), &p, metav1.CreateOptions{}); err != nil {
				t.Errorf("restore NetworkPolicy %s: %v", p.Name, err)
			}
		}
	}
	for _, p := range policies.Items {
		if err := k.cs.NetworkingV1().NetworkPolicies(ns).Delete(k.ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			restore()
			t.Fatal(err)
		}
	}
	d = holds("np-probe connects without the policies", true)
	notes = append(notes, fmt.Sprintf("%d policies deleted: connects (%.1fs)", len(policies.Items), d.Seconds()))
	restore()
	d = holds("np-probe blocked again", false)
	notes = append(notes, fmt.Sprintf("restored: blocked again (%.1fs)", d.Seconds()))
	return strings.Join(notes, "; ")
}
