package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"
)

// TestExportedDeclsStandAlone checks that no exported constant or variable
// is defined through an unexported name: go doc shows the definition, and
// "DefaultCacheProfiles = 2 * stripes" tells a reader nothing.
func TestExportedDeclsStandAlone(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg := pkgs["engine"]
	unexported := map[string]bool{}
	for _, f := range pkg.Files {
		for name, obj := range f.Scope.Objects {
			if !ast.IsExported(name) && obj.Kind != ast.Pkg {
				unexported[name] = true
			}
		}
	}
	for _, f := range pkg.Files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || (gd.Tok != token.CONST && gd.Tok != token.VAR) {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					var visit func(n ast.Node) bool
					visit = func(n ast.Node) bool {
						if sel, ok := n.(*ast.SelectorExpr); ok {
							ast.Inspect(sel.X, visit)
							return false // x.Name: a field, method or another package's name
						}
						if id, ok := n.(*ast.Ident); ok && unexported[id.Name] {
							t.Errorf("%s: %s is defined through the unexported %s", fset.Position(id.Pos()), name.Name, id.Name)
						}
						return true
					}
					ast.Inspect(vs.Values[i], visit)
				}
			}
		}
	}
}
