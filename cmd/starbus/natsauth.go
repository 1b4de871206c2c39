package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/starbus/starbus/bus"
	"github.com/starbus/starbus/config"
)

// Credentials and TLS for NATS, read from the files the configuration
// names (and the environment), never from flags.

// readSecret returns the first line of file, without surrounding spaces.
func readSecret(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	secret := strings.TrimSpace(sc.Text())
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if secret == "" {
		return "", fmt.Errorf("%s: empty", file)
	}
	return secret, nil
}

// embeddedAuth returns the users and the TLS configuration of the
// embedded server (dev, nats) that cfg asks for.
func embeddedAuth(cfg config.Config) ([]bus.User, *tls.Config, error) {
	w, err := bus.NewWorld(cfg.World)
	if err != nil {
		return nil, nil, err
	}
	var users []bus.User
	for _, u := range cfg.NATS.Users {
		role, err := bus.ParseRole(u.Role)
		if err != nil {
			return nil, nil, err
		}
		pw, err := readSecret(u.PasswordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("nats.users %s: %w", u.Name, err)
		}
		users = append(users, bus.User{Name: u.Name, Password: pw, Role: role, World: w})
	}
	if cfg.NATS.TLSCert == "" {
		return users, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.NATS.TLSCert, cfg.NATS.TLSKey)
	if err != nil {
		return nil, nil, fmt.Errorf("nats.tls_cert: %w", err)
	}
	return users, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// clientAuth returns the options of this process's connection to NATS,
// and the role it plays there (cfg's, or def).
func clientAuth(cfg config.Config, def bus.Role) ([]nats.Option, bus.Role, error) {
	role := def
	if cfg.NATS.Role != "" {
		r, err := bus.ParseRole(cfg.NATS.Role)
		if err != nil {
			return nil, "", err
		}
		role = r
	}
	var opts []nats.Option
	if cfg.NATS.User != "" {
		pw, ok := os.LookupEnv("STARBUS_NATS_PASSWORD")
		if cfg.NATS.PasswordFile != "" {
			var err error
			if pw, err = readSecret(cfg.NATS.PasswordFile); err != nil {
				return nil, "", fmt.Errorf("nats.password_file: %w", err)
			}
		} else if !ok {
			return nil, "", errors.New("nats.user is set but no password: give nats.password_file or STARBUS_NATS_PASSWORD")
		}
		// Replies come back on the role's own prefix, the only one its
		// permissions let it read.
		opts = append(opts, nats.UserInfo(cfg.NATS.User, pw), nats.CustomInboxPrefix(role.InboxPrefix()))
	}
	if cfg.NATS.CAFile != "" {
		pem, err := os.ReadFile(cfg.NATS.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("nats.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("nats.ca_file %s: no PEM certificate", cfg.NATS.CAFile)
		}
		opts = append(opts, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	return opts, role, nil
}
