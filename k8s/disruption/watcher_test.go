//go:build kind

package disruption_test

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// watcher follows the app's pods, every pod's restarts and the app Service's
// endpoints through informers.
type watcher struct {
	podIndex  cache.Indexer
	endpoints cache.Indexer

	mu        sync.Mutex
	restart   map[string]int32 // pod/container -> restarts seen, app pods only
	minReadyN int
}

func startWatcher(t *testing.T, cs *kubernetes.Clientset) *watcher {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	pi := f.Core().V1().Pods().Informer()
	ei := f.Discovery().V1().EndpointSlices().Informer()
	w := &watcher{podIndex: pi.GetIndexer(), endpoints: ei.GetIndexer(), restart: map[string]int32{}, minReadyN: replicas}
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Labels["app.kubernetes.io/name"] != "gok8s" {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount > 0 {
				w.restart[p.Name+"/"+c.Name] = max(w.restart[p.Name+"/"+c.Name], c.RestartCount)
			}
		}
	}
	onEndpoints := func(any) {
		n := w.readyEndpoints()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.minReadyN = min(w.minReadyN, n)
	}
	_, _ = pi.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }})
	_, _ = ei.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onEndpoints, UpdateFunc: func(_, o any) { onEndpoints(o) }, DeleteFunc: onEndpoints})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.Start(stop)
	for typ, ok := range f.WaitForCacheSync(stop) {
		if !ok {
			t.Fatalf("informer %v did not sync", typ)
		}
	}
	return w
}

func (w *watcher) pods(selector string) []*corev1.Pod {
	sel, _ := labels.Parse(selector)
	var out []*corev1.Pod
	for _, o := range w.podIndex.List() {
		if p := o.(*corev1.Pod); sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (w *watcher) appPods() []*corev1.Pod { return w.pods(appSelector) }

// readyEndpoints returns the number of ready endpoints of Service gok8s.
func (w *watcher) readyEndpoints() int {
	n := 0
	for _, o := range w.endpoints.List() {
		es := o.(*discoveryv1.EndpointSlice)
		if es.Labels[discoveryv1.LabelServiceName] != "gok8s" {
			continue
		}
		for _, e := range es.Endpoints {
			if ptr.Deref(e.Conditions.Ready, false) {
				n++
			}
		}
	}
	return n
}

func (w *watcher) resetMin() {
	n := w.readyEndpoints()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.minReadyN = n
}

// minReady returns the fewest ready endpoints since resetMin.
func (w *watcher) minReady() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.minReadyN
}

func (w *watcher) restarts() map[string]int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.restart)
}
