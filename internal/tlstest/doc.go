// Package tlstest makes TLS certificates for tests: a self-signed ECDSA
// certificate for the loopback addresses, made when the test runs (no key
// is checked in), with the configurations of a server holding it and of a
// client trusting it, and its PEM files for the commands that read them.
// It starts no goroutines and keeps no state.
package tlstest
