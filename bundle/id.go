package bundle

import (
	"fmt"
	"regexp"
)

// idPattern is runc's: letters, digits, '_', '+', '-' and '.'.
var idPattern = regexp.MustCompile(`^[\w+\-.]+$`)

// ValidateID refuses ids runc refuses, so an id can never name a path
// outside --root.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("container id cannot be empty")
	}
	if len(id) > 1024 {
		return fmt.Errorf("invalid container id %q: longer than 1024 bytes", id)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: it names a directory", id)
	}
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container id %q: only letters, digits, '_', '+', '-' and '.' are allowed", id)
	}
	return nil
}
