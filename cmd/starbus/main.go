// Command starbus runs Starbus: `starbus dev` for a whole world on one box,
// `starbus edge` and `starbus worker` against an external NATS, and
// `starbus client` to talk to a world from a terminal.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "starbus:", err)
		os.Exit(1)
	}
}
