package subject

import (
	"strconv"
	"strings"
)

// Limits of the tokens of a subject.
const (
	// MaxKeyLen bounds the length of a state key, so that a key always
	// fits a subject with room for the world prefix.
	MaxKeyLen = 1024
	// MaxNameLen bounds single-token names (worlds, regions, sessions,
	// channels).
	MaxNameLen = 128
)

// Partitions is the number of partitions of every world's event space
// (bus.Partitions documents what it means).
const Partitions = 16

// ValidName reports whether s is a single subject token made of letters,
// digits, '-' and '_', at most [MaxNameLen] bytes long.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

// ValidKey reports whether s can be a state key: dot-separated tokens of
// letters, digits, '-', '_', '=' and '/', with no empty token, at most
// [MaxKeyLen] bytes.
func ValidKey(s string) bool {
	if s == "" || len(s) > MaxKeyLen || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case nameByte(c), c == '=', c == '/':
		default:
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Partition returns the partition of the ordering key part: FNV-1a of its
// bytes, modulo [Partitions].
func Partition(part string) int {
	h := uint32(2166136261)
	for i := 0; i < len(part); i++ {
		h ^= uint32(part[i])
		h *= 16777619
	}
	return int(h % Partitions)
}

// World is the subject layout of one world. Its builders take tokens the
// caller has validated ([ValidName], [ValidKey]); its parsers take any
// string and return ok=false for anything that is not theirs.
type World struct {
	name   string
	prefix string // "sb.<name>."
}

// NewWorld returns the layout of the world called name, which must be a
// [ValidName].
func NewWorld(name string) World { return World{name: name, prefix: "sb." + name + "."} }

// Name returns the world's name.
func (w World) Name() string { return w.name }

// Prefix returns "sb.<name>.", the prefix of every stored subject.
func (w World) Prefix() string { return w.prefix }

// All matches every stored subject of the world.
func (w World) All() string { return w.prefix + ">" }

// Contains reports whether subject is one of the world's stored subjects.
func (w World) Contains(subject string) bool {
	return strings.HasPrefix(subject, w.prefix) && len(subject) > len(w.prefix)
}

// Key returns sb.<w>.kv.<key>.
func (w World) Key(key string) string { return w.prefix + "kv." + key }

// KeyFilter matches every state subject.
func (w World) KeyFilter() string { return w.prefix + "kv.>" }

// ParseKey returns the key of a state subject.
func (w World) ParseKey(subject string) (key string, ok bool) {
	rest, ok := strings.CutPrefix(subject, w.prefix+"kv.")
	if !ok || !ValidKey(rest) {
		return "", false
	}
	return rest, true
}

// Check returns sb.<w>.chk.<i>.
func (w World) Check(i int) string { return w.prefix + "chk." + strconv.Itoa(i) }

// CheckFilter matches every check subject.
func (w World) CheckFilter() string { return w.prefix + "chk.>" }

// IsCheck reports whether subject is one of the check subjects.
func (w World) IsCheck(subject string) bool {
	rest, ok := strings.CutPrefix(subject, w.prefix+"chk.")
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(rest, 10, 16)
	return err == nil
}

// Done returns sb.<w>.done.<seq>.
func (w World) Done(seq uint64) string { return w.prefix + "done." + strconv.FormatUint(seq, 10) }

// DoneFilter matches every applied marker.
func (w World) DoneFilter() string { return w.prefix + "done.>" }

// Event returns sb.<w>.ev.<p>.<region>.<part>, where p is
// [Partition](part).
func (w World) Event(region, part string) string {
	return w.prefix + "ev." + strconv.Itoa(Partition(part)) + "." + region + "." + part
}

// EventFilter matches every event of the world.
func (w World) EventFilter() string { return w.prefix + "ev.>" }

// PartitionFilter matches every event of partition p.
func (w World) PartitionFilter(p int) string { return w.prefix + "ev." + strconv.Itoa(p) + ".>" }

// RegionEventFilter matches every event of one region.
func (w World) RegionEventFilter(region string) string { return w.prefix + "ev.*." + region + ".*" }

// PartEventFilter matches every event ordered by part, in any region.
func (w World) PartEventFilter(part string) string {
	return w.prefix + "ev." + strconv.Itoa(Partition(part)) + ".*." + part
}

// ParseEvent returns the region and ordering key of an event subject. A
// subject whose partition token is not the partition of its ordering key
// is not an event.
func (w World) ParseEvent(subject string) (region, part string, ok bool) {
	rest, ok := strings.CutPrefix(subject, w.prefix+"ev.")
	if !ok {
		return "", "", false
	}
	ptok, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", false
	}
	region, part, ok = strings.Cut(rest, ".")
	if !ok || !ValidName(region) || !ValidName(part) || ptok != strconv.Itoa(Partition(part)) {
		return "", "", false
	}
	return region, part, true
}

// Schedule returns sb.<w>.sched.<id>.
func (w World) Schedule(id string) string { return w.prefix + "sched." + id }

// ScheduleFilter matches every schedule's alarms.
func (w World) ScheduleFilter() string { return w.prefix + "sched.*" }

// ParseSchedule returns the schedule id of an alarm subject.
func (w World) ParseSchedule(subject string) (id string, ok bool) {
	return parseName(subject, w.prefix+"sched.")
}

// Session returns sb.<w>.out.s.<id>.
func (w World) Session(id string) string { return w.prefix + "out.s." + id }

// SessionFilter matches the messages to every session.
func (w World) SessionFilter() string { return w.prefix + "out.s.*" }

// ParseSession returns the session a message subject is addressed to.
func (w World) ParseSession(subject string) (id string, ok bool) {
	return parseName(subject, w.prefix+"out.s.")
}

// Channel returns sb.<w>.out.c.<name>.
func (w World) Channel(name string) string { return w.prefix + "out.c." + name }

// ChannelFilter matches the messages to every channel.
func (w World) ChannelFilter() string { return w.prefix + "out.c.*" }

// ParseChannel returns the channel a message subject is addressed to.
func (w World) ParseChannel(subject string) (name string, ok bool) {
	return parseName(subject, w.prefix+"out.c.")
}

// OutFilter matches every stored message to clients.
func (w World) OutFilter() string { return w.prefix + "out.>" }

// LiveChannel returns sbe.<w>.c.<name>, outside the world's stream.
func (w World) LiveChannel(name string) string { return "sbe." + w.name + ".c." + name }

// LiveChannelFilter matches the best-effort messages to every channel.
func (w World) LiveChannelFilter() string { return "sbe." + w.name + ".c.*" }

// ParseLiveChannel returns the channel a best-effort subject is addressed
// to.
func (w World) ParseLiveChannel(subject string) (name string, ok bool) {
	return parseName(subject, "sbe."+w.name+".c.")
}

// Commits returns sbe.<w>.commit.<member>, outside the world's stream.
func (w World) Commits(member string) string { return "sbe." + w.name + ".commit." + member }

// DeadLetter returns sb.<w>.dlq.<seq>.
func (w World) DeadLetter(seq uint64) string { return w.prefix + "dlq." + strconv.FormatUint(seq, 10) }

// DeadLetterFilter matches every dead letter.
func (w World) DeadLetterFilter() string { return w.prefix + "dlq.>" }

// GroupFilter matches every message of the worker group g.
func (w World) GroupFilter(g string) string { return w.prefix + "grp." + g + ".>" }

// Member returns sb.<w>.grp.<g>.m.<member>.
func (w World) Member(g, member string) string { return w.prefix + "grp." + g + ".m." + member }

// Owner returns sb.<w>.grp.<g>.p.<p>; p must be in [0, [Partitions]).
func (w World) Owner(g string, p int) string { return w.prefix + "grp." + g + ".p." + strconv.Itoa(p) }

// ParseGroup returns what a message of worker group g is about: a
// member's heartbeat (member set, p = -1) or a partition's ownership
// record (p >= 0).
func (w World) ParseGroup(g, subject string) (member string, p int, ok bool) {
	rest, ok := strings.CutPrefix(subject, w.prefix+"grp."+g+".")
	if !ok {
		return "", -1, false
	}
	kind, name, ok := strings.Cut(rest, ".")
	switch {
	case !ok:
		return "", -1, false
	case kind == "m" && ValidName(name):
		return name, -1, true
	case kind == "p":
		n, err := strconv.Atoi(name)
		if err != nil || n < 0 || n >= Partitions || strconv.Itoa(n) != name {
			return "", -1, false
		}
		return "", n, true
	}
	return "", -1, false
}

// Edges is the core NATS subject of the edges' announcements.
func (w World) Edges() string { return "sbe." + w.name + ".edges" }

// Area is the subject of a reliable event at cell (cx, cy) of area.
func (w World) Area(area string, cx, cy int64) string {
	return w.prefix + "out.a." + area + "." + cellTokens(cx, cy)
}

// AreaFilter matches the reliable events of every cell of area.
func (w World) AreaFilter(area string) string { return w.prefix + "out.a." + area + ".*.*" }

// ParseArea returns the area and cell of a reliable area event's subject.
func (w World) ParseArea(subject string) (area string, cx, cy int64, ok bool) {
	rest, ok := strings.CutPrefix(subject, w.prefix+"out.a.")
	if !ok {
		return "", 0, 0, false
	}
	return parseAreaCell(rest)
}

// LiveArea is the core NATS subject of best-effort events at cell
// (cx, cy) of area.
func (w World) LiveArea(area string, cx, cy int64) string {
	return "sbe." + w.name + ".a." + area + "." + cellTokens(cx, cy)
}

// LiveAreaFilter matches the best-effort events of every area.
func (w World) LiveAreaFilter() string { return "sbe." + w.name + ".a.>" }

// ParseLiveArea returns the area and cell of a best-effort area event's
// subject.
func (w World) ParseLiveArea(subject string) (area string, cx, cy int64, ok bool) {
	rest, ok := strings.CutPrefix(subject, "sbe."+w.name+".a.")
	if !ok {
		return "", 0, 0, false
	}
	return parseAreaCell(rest)
}

func cellTokens(cx, cy int64) string {
	return strconv.FormatInt(cx, 10) + "." + strconv.FormatInt(cy, 10)
}

// parseAreaCell reads "<area>.<cx>.<cy>", each number in the one spelling
// cellTokens gives it.
func parseAreaCell(s string) (area string, cx, cy int64, ok bool) {
	area, rest, ok := strings.Cut(s, ".")
	if !ok || !ValidName(area) {
		return "", 0, 0, false
	}
	xs, ys, ok := strings.Cut(rest, ".")
	if !ok {
		return "", 0, 0, false
	}
	x, err1 := strconv.ParseInt(xs, 10, 64)
	y, err2 := strconv.ParseInt(ys, 10, 64)
	if err1 != nil || err2 != nil || strconv.FormatInt(x, 10) != xs || strconv.FormatInt(y, 10) != ys {
		return "", 0, 0, false
	}
	return area, x, y, true
}

// parseName returns the one valid name token that follows prefix in
// subject.
func parseName(subject, prefix string) (string, bool) {
	name, ok := strings.CutPrefix(subject, prefix)
	if !ok || !ValidName(name) {
		return "", false
	}
	return name, true
}
