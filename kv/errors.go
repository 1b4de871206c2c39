package kv

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by the store and its transactions. Backend errors are
// mapped to these at the boundary, so callers never import jetstream.
var (
	// ErrNotFound reports a key with no value (never written, or deleted).
	ErrNotFound = errors.New("kv: key not found")
	// ErrConflict reports that a commit failed because a key the transaction
	// read or wrote changed since it was read. The transaction may be re-run
	// from scratch. Errors that name the key are of type *ConflictError.
	ErrConflict = errors.New("kv: conflict")
	// ErrCommitUnknown reports a commit whose outcome is not known (the
	// server did not answer in time). It may or may not have taken effect;
	// re-running the transaction could apply it twice, so [Store.Update]
	// does not retry it. Tasks run by the handler runtime are protected by
	// their applied marker and are simply redelivered.
	ErrCommitUnknown = errors.New("kv: commit outcome unknown")
	// ErrTxDone reports use of a transaction after it committed or aborted.
	ErrTxDone = errors.New("kv: transaction done")
	// ErrReadOnly reports a write in a transaction opened by [Store.View].
	ErrReadOnly = errors.New("kv: read-only transaction")
	// ErrTooLarge reports a commit with more messages than one atomic batch
	// can carry.
	ErrTooLarge = errors.New("kv: commit too large")
	// ErrInvalidSubject reports an outgoing message addressed outside the
	// world's outgoing subjects.
	ErrInvalidSubject = errors.New("kv: invalid subject")
	// ErrClosed reports use of a closed store.
	ErrClosed = errors.New("kv: store closed")
	// ErrUnavailable reports that the server did not answer, or answered
	// that it cannot serve now (a cluster electing a leader, a node going
	// away). Nothing was decided: the same read or commit may succeed when
	// tried again. A commit that may have landed is [ErrCommitUnknown]
	// instead.
	ErrUnavailable = errors.New("kv: server unavailable")
)

// unavailable marks err as [ErrUnavailable] if it is a failure to reach
// the server or a server error (5xx) rather than an answer about the
// request.
func unavailable(err error) error {
	var apiErr *jetstream.APIError
	if err == nil || (errors.As(err, &apiErr) && apiErr.Code < 500) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// ConflictError names the key whose revision moved under a transaction, when
// the store can tell. It matches [ErrConflict] with errors.Is.
type ConflictError struct {
	Key  string // the key, "" when the server rejected a whole group
	Read uint64 // the revision the transaction read (0: absent)
	Now  uint64 // the newer revision, 0 when unknown
}

func (e *ConflictError) Error() string {
	if e.Key == "" {
		return "kv: conflict"
	}
	return fmt.Sprintf("kv: conflict on %q: read revision %d, now %d", e.Key, e.Read, e.Now)
}

// Is makes a *ConflictError match [ErrConflict].
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
