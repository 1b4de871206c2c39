package sgs_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/starbus/starbus/edge/sgs"
)

// TestOpcodesMatchProtocolPage: PROTOCOL.md's table of SimpleSgs opcodes
// lists every opcode of the codec under its name, and no other.
func TestOpcodesMatchProtocolPage(t *testing.T) {
	page, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(page), "\n## SimpleSgsProtocol")
	if !ok {
		t.Fatal("PROTOCOL.md has no SimpleSgsProtocol section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile(`(?m)^\| 0x([0-9a-f]{2}) \| ([A-Z_]+) \|`)
	inTable := map[byte]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		n, _ := strconv.ParseUint(m[1], 16, 8)
		inTable[byte(n)] = m[2]
	}
	for op := range 256 {
		name := sgs.OpName(byte(op))
		got, listed := inTable[byte(op)]
		switch {
		case name == "" && listed:
			t.Errorf("PROTOCOL.md lists opcode 0x%02x (%s), which the codec does not have", op, got)
		case name != "" && !listed:
			t.Errorf("opcode 0x%02x (%s) is not in PROTOCOL.md's table", op, name)
		case name != got:
			t.Errorf("opcode 0x%02x: PROTOCOL.md names it %q, the codec %q", op, got, name)
		}
	}
}
