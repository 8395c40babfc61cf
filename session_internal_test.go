package users

import (
	"testing"
	"unsafe"
)

// TestValidatedSizeClass keeps ValidateToken's one allocation in the 576-byte
// size class: a field added to Session, User or UserRecord that pushes it to
// the next class (640 bytes) makes every authenticated request allocate and
// collect 11% more, unseen by any other test.
func TestValidatedSizeClass(t *testing.T) {
	// Go puts an 8-byte header before each object over 512 bytes that holds
	// pointers; 576 is the size class after 512.
	const header, class = 8, 576
	if got := unsafe.Sizeof(validated{}); got+header > class {
		t.Errorf("validated is %d bytes, %d with its header: over the %d-byte size class. "+
			"Make room for what was added (shrink the room for methods, order fields so no padding is left, "+
			"or keep the new field out of what GetSession reads), or, if it must grow, "+
			"measure BenchmarkValidateToken against the previous commit and change this test and the comment on validated",
			got, got+header, class)
	}
}
