package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// An area of interest is a world's plane cut into square cells, each cell
// a subject: an event published "at" a position goes to its cell's subject,
// and a session's interest is a square around a position, which its edge
// turns into the cells it covers. Package handlers declares areas and
// moves interests (handlers.Area); edges deliver (see edge/doc.go). The
// records and subjects both sides share are declared here, once.

// Interest is where a session looks in one area: the square of half-side
// Radius around (X, Y), edges included. It is the value of the state key
// [InterestKey] and the body of a [NoticeInterest].
type Interest struct {
	Area     string  `json:"area"`
	X        float64 `json:"x"`
	Y        float64 `json:"y"`
	Radius   float64 `json:"r"`
	Cell     float64 `json:"cell"`
	Delivery string  `json:"delivery"` // DeliveryReliable or DeliveryBestEffort
}

// Covers reports whether the point (x, y) lies in the interest's square.
func (in Interest) Covers(x, y float64) bool {
	return math.Abs(x-in.X) <= in.Radius && math.Abs(y-in.Y) <= in.Radius
}

// CellRange is a rectangle of cells, bounds included.
type CellRange struct{ X0, Y0, X1, Y1 int64 }

// Contains reports whether the cell (cx, cy) is in the range.
func (r CellRange) Contains(cx, cy int64) bool {
	return cx >= r.X0 && cx <= r.X1 && cy >= r.Y0 && cy <= r.Y1
}

// Cells returns the cells the interest's square touches.
func (in Interest) Cells() CellRange {
	return CellRange{
		X0: CellOf(in.X-in.Radius, in.Cell), Y0: CellOf(in.Y-in.Radius, in.Cell),
		X1: CellOf(in.X+in.Radius, in.Cell), Y1: CellOf(in.Y+in.Radius, in.Cell),
	}
}

// ErrInvalidInterest reports an interest or area position that cannot be
// indexed.
var ErrInvalidInterest = errors.New("bus: invalid interest")

// Validate reports whether the interest can be indexed: a radius of at
// most 7 cells, so that an edge's index of a session stays small (15×15
// cells at most).
func (in Interest) Validate() error {
	switch {
	case ValidName(in.Area) != nil:
		return fmt.Errorf("%w: area %q", ErrInvalidInterest, in.Area)
	case !(in.Cell > 0) || math.IsInf(in.Cell, 0):
		return fmt.Errorf("%w: cell side %v", ErrInvalidInterest, in.Cell)
	case !(in.Radius >= 0) || in.Radius/in.Cell > 7:
		return fmt.Errorf("%w: radius %v is more than 7 cells of %v", ErrInvalidInterest, in.Radius, in.Cell)
	case !finite(in.X) || !finite(in.Y) || !cellable(in.X, in.Cell) || !cellable(in.Y, in.Cell):
		return fmt.Errorf("%w: position %v, %v", ErrInvalidInterest, in.X, in.Y)
	case in.Delivery != DeliveryReliable && in.Delivery != DeliveryBestEffort:
		return fmt.Errorf("%w: delivery %q", ErrInvalidInterest, in.Delivery)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// cellable reports whether v's cell, and its neighbours', fit an int64 with
// room to spare.
func cellable(v, cell float64) bool { return math.Abs(v/cell) < 1<<52 }

// CellOf returns the cell of coordinate v, for cells of side cell.
func CellOf(v, cell float64) int64 { return int64(math.Floor(v / cell)) }

// InterestNotice is the body of a [NoticeInterest]: the session's new
// interest in an area, and the one it replaces (nil if it had none), so
// that a replay that starts between them knows where the session looked.
type InterestNotice struct {
	Interest
	Prev *Interest `json:"prev,omitempty"`
	Drop bool      `json:"drop,omitempty"` // the session no longer looks at the area
}

// DecodeInterestNotice reads a notice's body and checks it.
func DecodeInterestNotice(b []byte) (InterestNotice, error) {
	var n InterestNotice
	if err := json.Unmarshal(b, &n); err != nil {
		return n, fmt.Errorf("%w: %v", ErrInvalidInterest, err)
	}
	if err := n.Validate(); err != nil {
		return n, err
	}
	if n.Prev != nil {
		if err := n.Prev.Validate(); err != nil {
			return n, err
		}
		if n.Prev.Area != n.Area {
			return n, fmt.Errorf("%w: previous area %q is not %q", ErrInvalidInterest, n.Prev.Area, n.Area)
		}
	}
	return n, nil
}

// InterestKey holds the session's interest in area (an [Interest]).
func InterestKey(session, area string) string { return InterestPrefix(session) + "." + area }

// InterestPrefix is the prefix of a session's interest keys.
func InterestPrefix(session string) string { return "starbus.aoi." + session }

// HeaderAt carries the position of an area event: "x y", each formatted
// by [FormatAt].
const HeaderAt = "Starbus-At"

// FormatAt is the value of [HeaderAt] for (x, y).
func FormatAt(x, y float64) string {
	return strconv.FormatFloat(x, 'g', -1, 64) + " " + strconv.FormatFloat(y, 'g', -1, 64)
}

// ParseAt reads a [HeaderAt] value.
func ParseAt(s string) (x, y float64, ok bool) {
	xs, ys, ok := strings.Cut(s, " ")
	if !ok {
		return 0, 0, false
	}
	x, err1 := strconv.ParseFloat(xs, 64)
	y, err2 := strconv.ParseFloat(ys, 64)
	return x, y, err1 == nil && err2 == nil && finite(x) && finite(y)
}

// Area returns the subject of a reliable event at cell (cx, cy) of area:
// sb.<w>.out.a.<area>.<cx>.<cy>, stored with the task's commit.
func (w World) Area(area string, cx, cy int64) (string, error) {
	if err := ValidName(area); err != nil {
		return "", fmt.Errorf("area %q: %w", area, err)
	}
	return w.s.Area(area, cx, cy), nil
}

// AreaFilter matches the reliable events of every cell of area.
func (w World) AreaFilter(area string) string { return w.s.AreaFilter(area) }

// ParseArea returns the area and cell of a reliable area event's subject.
func (w World) ParseArea(subject string) (area string, cx, cy int64, ok bool) {
	return w.s.ParseArea(subject)
}

// LiveArea returns the core NATS subject of best-effort events at cell
// (cx, cy) of area: sbe.<w>.a.<area>.<cx>.<cy>. An edge subscribes to the
// cells its sessions look at.
func (w World) LiveArea(area string, cx, cy int64) (string, error) {
	if err := ValidName(area); err != nil {
		return "", fmt.Errorf("area %q: %w", area, err)
	}
	return w.s.LiveArea(area, cx, cy), nil
}

// LiveAreaFilter matches the best-effort events of every area.
func (w World) LiveAreaFilter() string { return w.s.LiveAreaFilter() }

// ParseLiveArea returns the area and cell of a best-effort area event's
// subject.
func (w World) ParseLiveArea(subject string) (area string, cx, cy int64, ok bool) {
	return w.s.ParseLiveArea(subject)
}
