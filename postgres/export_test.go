package postgres

// SchemaVersion lets the external tests see the version New migrates to.
var SchemaVersion = schemaVersion
