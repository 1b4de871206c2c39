// Package metricstest reads a /metrics endpoint for tests: it fetches the
// Prometheus text format over HTTP and parses it with
// github.com/prometheus/common/expfmt, the way a Prometheus server would.
// It starts no goroutines.
package metricstest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Scrape fetches url and parses it, failing tb if it cannot.
func Scrape(tb testing.TB, url string) Families {
	tb.Helper()
	mfs, err := TryScrape(url)
	if err != nil {
		tb.Fatal(err)
	}
	return mfs
}

// TryScrape fetches url and parses it; for tests that wait on a condition.
func TryScrape(url string) (Families, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: url, Status: resp.Status}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// StatusError reports an answer other than 200 OK.
type StatusError struct{ URL, Status string }

func (e *StatusError) Error() string { return "GET " + e.URL + ": " + e.Status }

// Series returns the first series of family name whose labels include
// labels, or nil.
func (f Families) Series(name string, labels map[string]string) *dto.Metric {
	mf := f[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// Value returns the value of a counter or gauge series (see Series), or
// a histogram's count; ok is false if there is no such series.
func (f Families) Value(name string, labels map[string]string) (v float64, ok bool) {
	m := f.Series(name, labels)
	if m == nil {
		return 0, false
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount()), true
	}
	return 0, false
}
