package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// A task's state: keyed values read and written in its transaction. Reads
// record the revision they saw and the commit checks every one of them;
// writes take effect only if the task commits (see package kv). Keys are
// dot-separated tokens of letters, digits, '-' and '_' ("player.ann.inv").
//
// The "starbus." key space holds the platform's own records (sessions,
// channels, schedules, accounts). A task may read them but not write
// them: Put and Delete refuse them with [ErrReserved]; channels, sessions
// and schedules change through their own methods.

// ErrReserved reports a write of a key, or an event of a type, that the
// platform reserves for itself (the "starbus." space).
var ErrReserved = errors.New("handlers: reserved for the platform")

// reservedPrefix is the key space and event type space of the platform.
const reservedPrefix = "starbus"

func reserved(what, name string) error {
	if name == reservedPrefix || strings.HasPrefix(name, reservedPrefix+".") {
		return fmt.Errorf("%w: %s %q", ErrReserved, what, name)
	}
	return nil
}

// Get decodes the value of key into v. It returns kv.ErrNotFound if the
// key has no value; [Task.Lookup] is the form for keys that may be absent.
func (t *Task) Get(ctx context.Context, key string, v any) error { return t.tx.Get(ctx, key, v) }

// Lookup decodes the value of key into v and reports whether the key has
// a value. A missing key leaves v as it was, so v can hold the default:
//
//	hp := 100
//	if _, err := t.Lookup(ctx, "player.ann.hp", &hp); err != nil {
//		return err
//	}
func (t *Task) Lookup(ctx context.Context, key string, v any) (bool, error) {
	return t.tx.Lookup(ctx, key, v)
}

// GetBytes returns the raw value of key (kv.ErrNotFound if it has none).
// The slice must not be modified.
func (t *Task) GetBytes(ctx context.Context, key string) ([]byte, error) {
	return t.tx.GetBytes(ctx, key)
}

// Peek decodes into v the latest committed value of key this worker knows,
// and reports whether the key has one, without reading it in the task's
// transaction: the commit does not check it, so it costs no conflict, and
// the value may be a moment old. Use it for what a task shows, never for
// what it decides: a snapshot of what a player starts to see (see
// [Area]), not whether a cell is free. It sees the task's own writes.
func (t *Task) Peek(ctx context.Context, key string, v any) (bool, error) {
	return t.tx.Peek(ctx, key, v)
}

// Exists reports whether key has a value, recording the read like Get.
func (t *Task) Exists(ctx context.Context, key string) (bool, error) { return t.tx.Exists(ctx, key) }

// Prefetch loads the values of keys not read yet in one round trip, so
// that the Gets that follow are answered from memory (see kv.Tx.Prefetch).
func (t *Task) Prefetch(ctx context.Context, keys ...string) error {
	return t.tx.Prefetch(ctx, keys...)
}

// List returns the keys under prefix that have a value, sorted, and
// checks the whole range at commit: the task conflicts with any write
// under prefix committed after the List (see kv.Tx.List).
func (t *Task) List(ctx context.Context, prefix string) ([]string, error) {
	return t.tx.List(ctx, prefix)
}

// Put encodes v and writes it to key if the task commits.
func (t *Task) Put(key string, v any) error {
	if err := reserved("key", key); err != nil {
		return err
	}
	return t.tx.Put(key, v)
}

// PutBytes writes b to key if the task commits. The task keeps b; do not
// modify it.
func (t *Task) PutBytes(key string, b []byte) error {
	if err := reserved("key", key); err != nil {
		return err
	}
	return t.tx.PutBytes(key, b)
}

// Delete removes key if the task commits. Deleting a missing key is not an
// error.
func (t *Task) Delete(key string) error {
	if err := reserved("key", key); err != nil {
		return err
	}
	return t.tx.Delete(key)
}
