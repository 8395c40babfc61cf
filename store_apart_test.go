package users_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestStoresDoNotBorrow checks that neither built-in store uses an unexported
// name that only the other declares: what both need lives beside the contract
// or in an internal package, so each store can be read, changed or removed
// alone.
func TestStoresDoNotBorrow(t *testing.T) {
	stores := []string{"store_memory", "store_bolt"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	declared := map[string]map[string]bool{} // name → the stores (or "" for others) declaring it
	parsed := map[string]*ast.File{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed[name] = f
		owner := storeOf(name, stores)
		for _, n := range topLevelNames(f) {
			if !ast.IsExported(n) {
				if declared[n] == nil {
					declared[n] = map[string]bool{}
				}
				declared[n][owner] = true
			}
		}
	}
	for name, f := range parsed {
		user := storeOf(name, stores)
		if user == "" {
			continue
		}
		seen := map[string]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				ast.Inspect(sel.X, func(n ast.Node) bool { return inspectIdent(n, seen) })
				return false // sel.Sel is a field or method, not a package-level name
			}
			return inspectIdent(n, seen)
		})
		for id := range seen {
			owners := declared[id]
			if len(owners) == 1 && !owners[user] && !owners[""] {
				for other := range owners {
					t.Errorf("%s uses %s, declared only in the %s files: move what both stores use beside the contract or into internal/", name, id, other)
				}
			}
		}
	}
}

func inspectIdent(n ast.Node, seen map[string]bool) bool {
	if id, ok := n.(*ast.Ident); ok {
		seen[id.Name] = true
	}
	return true
}

// storeOf returns the store whose files include name, or "".
func storeOf(name string, stores []string) string {
	i := slices.IndexFunc(stores, func(s string) bool { return strings.HasPrefix(name, s) })
	if i < 0 {
		return ""
	}
	return stores[i]
}

// topLevelNames returns the package-level functions, types, variables and
// constants f declares (methods are reached through their receiver's type).
func topLevelNames(f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				out = append(out, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out = append(out, s.Name.Name)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	return out
}
