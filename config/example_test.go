package config_test

import (
	"fmt"

	"github.com/starbus/starbus/config"
)

// Example starts from the defaults, changes a field, and validates: the
// error names the field by its path in a JSON config file.
func Example() {
	cfg := config.Default()
	cfg.Edge.Listen = ":7400"
	fmt.Println(cfg.Validate())
	cfg.Edge.RatePerSecond = 0
	fmt.Println(cfg.Validate())
	// Output:
	// <nil>
	// config: invalid: edge.rate_per_second: must be positive
}
