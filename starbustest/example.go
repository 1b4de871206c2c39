package starbustest

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RunExample runs test as a test of its own, for an Example function,
// which has no *testing.T: a game's examples can then use the kit as its
// tests do, and be checked by their // Output: comment.
//
// The testing.TB that test gets has what the kit and most tests need:
// Helper, Cleanup, TempDir, Context, Name, Output, Failed, Skipped, and
// the Log, Error, Fatal and Skip families (Fatal and Skip end test's
// goroutine, as in a test); its other methods panic. Its cleanups run,
// last registered first, once test returns or ends. A failure is printed
// to standard output, after what test logged, so that the example's
// output check fails and shows why; on success its log is discarded.
func RunExample(test func(t testing.TB)) {
	if t := runExample(test); t.Failed() {
		fmt.Printf("%sFAIL: %s\n", t.log.String(), t.Name())
	}
}

// runExample runs test with an exampleTB and returns it once test and its
// cleanups have ended.
func runExample(test func(t testing.TB)) *exampleTB {
	t := &exampleTB{}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer t.runCleanups()
		test(t)
	}()
	<-ended
	return t
}

// exampleTB is the testing.TB of RunExample.
type exampleTB struct {
	testing.TB // nil: the methods it does not define panic

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	log      strings.Builder
	failed   bool
	skipped  bool
	cleanups []func()
}

func (t *exampleTB) Name() string             { return "Example" }
func (t *exampleTB) Helper()                  {}
func (t *exampleTB) Context() context.Context { return t.ctx }
func (t *exampleTB) Output() io.Writer        { return writerFunc(t.write) }

func (t *exampleTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// runCleanups cancels the context and runs the cleanups, each in a
// goroutine of its own so that one that fails (Goexit) does not skip the
// others.
func (t *exampleTB) runCleanups() {
	t.cancel()
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		<-done
	}
}

func (t *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "starbustest-example")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (t *exampleTB) write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.log.Write(p)
}

func (t *exampleTB) Log(args ...any) { _, _ = t.write([]byte(fmt.Sprintln(args...))) }
func (t *exampleTB) Logf(format string, args ...any) {
	_, _ = t.write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

func (t *exampleTB) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}

func (t *exampleTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *exampleTB) FailNow()                          { t.Fail(); runtime.Goexit() }
func (t *exampleTB) Error(args ...any)                 { t.Log(args...); t.Fail() }
func (t *exampleTB) Errorf(format string, args ...any) { t.Logf(format, args...); t.Fail() }
func (t *exampleTB) Fatal(args ...any)                 { t.Log(args...); t.FailNow() }
func (t *exampleTB) Fatalf(format string, args ...any) { t.Logf(format, args...); t.FailNow() }

func (t *exampleTB) SkipNow() {
	t.mu.Lock()
	t.skipped = true
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *exampleTB) Skipped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.skipped
}

func (t *exampleTB) Skip(args ...any)                 { t.Log(args...); t.SkipNow() }
func (t *exampleTB) Skipf(format string, args ...any) { t.Logf(format, args...); t.SkipNow() }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
