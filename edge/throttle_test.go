package edge_test

import (
	"bufio"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starbus/starbus/edge/wire"
	"github.com/starbus/starbus/internal/natstest"
)

// loginFrom logs name in with password over a connection from the local
// address ip, and returns the answer's opcode and, for LOGIN_FAILED, its
// code and reason.
func loginFrom(t testing.TB, addr, ip, name, password string) (byte, wire.Code, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write(rawFrame(0x01, []byte{1}, rawStr(name), rawStr(password))); err != nil {
		t.Fatal(err)
	}
	op, body := readRaw(t, bufio.NewReader(nc))
	if op != 0x82 {
		return op, 0, ""
	}
	reason, _ := rawStrAt(body[2:])
	return op, wire.Code(binary.BigEndian.Uint16(body)), reason
}

// TestLoginThrottled is #12's acceptance 8 (throttling): failed logins
// from one address slow that address down, a guessed name is slowed for
// everyone but only briefly, and the player, from another address, gets in
// once that brief wait has passed.
func TestLoginThrottled(t *testing.T) {
	w := startWorld(t, nil)
	const guesser, player = "127.0.0.1", "127.0.0.2"
	if op, code, why := loginFrom(t, w.addr, player, "ann", "right"); op != 0x81 {
		t.Fatalf("registration: op 0x%02x code %v %s", op, code, why)
	}
	for i := range 3 {
		if _, code, _ := loginFrom(t, w.addr, guesser, "ann", "wrong"); code != wire.CodeBadCredentials {
			t.Fatalf("guess %d: code %v, want bad-credentials", i, code)
		}
	}
	// The guesser is now refused unchecked, even with the right password.
	_, code, why := loginFrom(t, w.addr, guesser, "ann", "right")
	if code != wire.CodeThrottled || !strings.Contains(why, "retry in") {
		t.Fatalf("after 3 failures: code %v %q, want throttled", code, why)
	}
	// The same address guessing another name is refused too.
	if _, code, _ := loginFrom(t, w.addr, guesser, "bob", "x"); code != wire.CodeThrottled {
		t.Fatalf("another name from the guessing address: code %v, want throttled", code)
	}
	// The player, from elsewhere, may be asked to wait, never longer than
	// the name's ceiling, and then gets in.
	natstest.Eventually(t, 10*time.Second, func() bool {
		op, code, why := loginFrom(t, w.addr, player, "ann", "right")
		if code == wire.CodeThrottled {
			_, after, _ := strings.Cut(why, "retry in ")
			if d, err := time.ParseDuration(after); err != nil || d > 2*time.Second {
				t.Fatalf("the player is asked to wait: %q", why)
			}
		}
		return op == 0x81
	}, "the player logs in from another address")
	if st := w.edge.Stats(); st.BadLogins != 3 || st.Throttled < 2 {
		t.Fatalf("stats %+v, want 3 bad logins and at least 2 throttled", st)
	}
}
