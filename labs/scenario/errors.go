package scenario

import "github.com/forgelab/forgelab/labs/tomlfile"

// Error is one problem in a scenario, at a line (0: the file as a whole).
type Error = tomlfile.Error

// Errors is every problem found, in line order, one a line.
type Errors = tomlfile.Errors
