package manifests

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the field manager of what a Client applies.
const FieldOwner = "gok8s-manifests"

// A Client applies objects to one API server. Its methods may be called from
// several goroutines; they run one at a time, so that each call's warnings are
// its own.
type Client struct {
	mu       sync.Mutex
	c        client.Client
	warnings *warnings
}

// NewClient returns a Client for the API server of cfg, which it does not
// change.
func NewClient(cfg *rest.Config) (*Client, error) {
	w := &warnings{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	return &Client{c: c, warnings: w}, nil
}

// Apply sends obj with server-side apply, forcing ownership, with strict field
// validation: an unknown or misspelled field is an error. With dryRun the API
// server validates and admits obj (Pod Security admission included) without
// storing it. Apply returns the warnings the API server sent, such as Pod
// Security's for a template it would not admit as a Pod. obj is not changed.
func (c *Client) Apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := []client.PatchOption{client.FieldOwner(FieldOwner), client.ForceOwnership, client.FieldValidation("Strict")}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	c.warnings.take() // none left from a call that was cut short
	err := c.c.Patch(ctx, obj.DeepCopy(), client.Apply, opts...)
	return c.warnings.take(), err
}

// warnings collects the API server's warning headers.
type warnings struct {
	mu   sync.Mutex
	list []string
}

var _ rest.WarningHandler = (*warnings)(nil)

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}
