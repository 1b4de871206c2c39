package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// pprofFlag adds -pprof to a command's flags: the address of an HTTP
// server with net/http/pprof's handlers, off by default.
func pprofFlag(fs *flag.FlagSet) *string {
	return fs.String("pprof", "", "serve net/http/pprof on this address, e.g. 127.0.0.1:6060 (default: off)")
}

// startPprof serves net/http/pprof on addr, on a mux of its own (nothing
// is registered on http.DefaultServeMux), until stop is called; stop
// waits for the server's goroutine. An empty addr serves nothing.
func startPprof(addr string, stderr io.Writer) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "starbus: pprof on http://%s/debug/pprof/\n", l.Addr())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "starbus: pprof: %v\n", err)
		}
	})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		srv.Close()
		wg.Wait()
	}, nil
}
