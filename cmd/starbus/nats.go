package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/config"
)

// runNATS runs one NATS server with JetStream, alone or as a node of a
// cluster, until ctx ends: a real deployment's NATS with nothing but this
// binary. scripts/cluster starts three on loopback.
func runNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("starbus nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "JetStream store directory (required)")
	host := fs.String("host", "127.0.0.1", "address of the client listener")
	port := fs.Int("port", 4222, "client port (-1: a free port)")
	name := fs.String("name", "starbus", "server name, unique in a cluster")
	cluster := fs.String("cluster", "", "host:port of this node's route listener; clusters the node")
	clusterName := fs.String("cluster-name", "starbus", "the cluster's name, the same on every node")
	routes := fs.String("routes", "", "comma-separated route URLs of the cluster's nodes (nats://host:port), this one's may be among them")
	ready := fs.Duration("ready-timeout", time.Minute, "how long to wait for JetStream to be ready (on a cluster: for a meta leader)")
	syncAlways := fs.Bool("sync-always", false, "fsync every write before acknowledging it: survives power loss, slower")
	file := fs.String("config", "", "JSON config file: its world, nats.users and nats.tls_cert/tls_key (users and TLS are never flags)")
	pprofAddr := pprofFlag(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	fileCfg := config.Default()
	if *file != "" {
		var err error
		if fileCfg, err = readConfigFile(*file, fileCfg); err != nil {
			return err
		}
		if err := fileCfg.Validate(); err != nil {
			return err
		}
	}
	users, natsTLS, err := embeddedAuth(fileCfg)
	if err != nil {
		return err
	}
	stop, err := startPprof(*pprofAddr, stderr)
	if err != nil {
		return err
	}
	defer stop()
	if *data == "" {
		fmt.Fprintln(stderr, "starbus nats: -data is required")
		return errUsage
	}
	cfg := bus.EmbeddedConfig{Dir: *data, Host: *host, Port: *port, ServerName: *name, SyncAlways: *syncAlways, Users: users, TLS: natsTLS}
	if *cluster != "" {
		chost, cport, err := net.SplitHostPort(*cluster)
		if err != nil {
			return fmt.Errorf("starbus nats: -cluster %q: %w", *cluster, err)
		}
		p, err := strconv.Atoi(cport)
		if err != nil {
			return fmt.Errorf("starbus nats: -cluster %q: port: %w", *cluster, err)
		}
		cfg.Cluster = &bus.ClusterConfig{Name: *clusterName, Host: chost, Port: p}
		for r := range strings.SplitSeq(*routes, ",") {
			if r = strings.TrimSpace(r); r != "" {
				cfg.Cluster.Routes = append(cfg.Cluster.Routes, r)
			}
		}
	} else if *routes != "" {
		fmt.Fprintln(stderr, "starbus nats: -routes needs -cluster")
		return errUsage
	}
	srv, err := bus.StartEmbedded(cfg)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	fmt.Fprintf(stdout, "starbus nats: node %s, clients %s, routes %s, data %s\n", *name, srv.ClientURL(), srv.ClusterURL(), *data)
	rctx, cancel := context.WithTimeout(ctx, *ready)
	err = srv.JetStreamReady(rctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	fmt.Fprintf(stdout, "starbus nats: node %s ready\n", *name)
	<-ctx.Done()
	return nil
}
