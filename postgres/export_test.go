package postgres

// SchemaVersion lets the external tests see the version New migrates to.
var SchemaVersion = schemaVersion

// Migration returns the statements that bring the schema from version v-1 to
// v, for tests that build an old schema as an old version of the package did.
func Migration(v int) []string { return migrations[v-1] }

// EnsureTrigram lets tests that build an old schema install pg_trgm and put it
// on the transaction's search_path, as migrate does before version 2.
var EnsureTrigram = ensureTrigram
