package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/starbus/starbus/internal/natstest"
	"github.com/starbus/starbus/kv"
	"github.com/starbus/starbus/metrics"
)

// Example wires a world's store to a registry: its observer before Open,
// its counters after; /metrics then serves both.
func Example() {
	env, stop, err := natstest.StartExample("example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	reg, err := metrics.New("example", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := kv.Open(ctx, env.JS, env.World, kv.Options{Observer: reg.StoreObserver()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	if err := reg.RegisterStore(store); err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for i := range 3 {
		if err := store.Update(ctx, func(tx *kv.Tx) error { return tx.Put("gold.ann", i) }); err != nil {
			fmt.Println(err)
			return
		}
	}
	v, err := reg.Values()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("commits:", v["starbus_kv_commits_total"])
	fmt.Println("commit durations observed:", v[`starbus_kv_commit_duration_seconds_count{outcome="committed"}`])
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("text format:", strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4"))
	// Output:
	// commits: 3
	// commit durations observed: 3
	// text format: true
}
