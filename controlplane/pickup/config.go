package pickup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weft-dev/weft/proto/configfile"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Importer imports configs; the admin API's config service is one.
type Importer interface {
	ImportConfig(ctx context.Context, req *adminv1.ImportConfigRequest) (*adminv1.ImportConfigResponse, error)
}

// isConfigFile reports whether name is a config file, by its extension.
func isConfigFile(name string) bool {
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// The prefixes of the variables a config file the control plane reads may
// use: never the rest of its environment, which holds its own settings
// (WEFT_DB with its password, WEFT_SECRETS_KEY).
var varPrefixes = []string{"WEFT_SECRET_", "WEFT_CONFIG_"}

// varsWhere says where the control plane looks for a config file's
// variables, for errors.
const varsWhere = "in the control plane's environment, which config files may read WEFT_SECRET_* and WEFT_CONFIG_* from"

// Getenv is the process's environment as config files see it: only the
// variables named WEFT_SECRET_* and WEFT_CONFIG_*, and a variable set
// empty is not set.
func Getenv(name string) (string, bool) {
	if !slices.ContainsFunc(varPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
		return "", false
	}
	v := os.Getenv(name)
	return v, v != ""
}

// ImportFiles reads the config files as one config (with what they
// include, which must lie under root), resolves its ${VAR}s with lookup,
// and imports it, without pruning. Every error names the file and line it
// is about.
func ImportFiles(ctx context.Context, im Importer, root string, files []string, lookup func(string) (string, bool)) (*adminv1.ImportConfigResponse, error) {
	doc, err := configfile.ReadFilesWithin(root, files...)
	if err != nil {
		return nil, err
	}
	if err := doc.ResolveFrom(lookup, varsWhere); err != nil {
		return nil, err
	}
	res, err := im.ImportConfig(ctx, &adminv1.ImportConfigRequest{Config: doc.Config})
	if err != nil {
		return nil, doc.Explain(err)
	}
	return res, nil
}

// ImportDir imports the config files directly in dir, in name order, as
// one config. Files an editor leaves behind are skipped.
func ImportDir(ctx context.Context, im Importer, dir string, lookup func(string) (string, bool)) (*adminv1.ImportConfigResponse, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("config directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() && isConfigFile(e.Name()) && !ignored(e.Name()) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("config directory %s: no config files (.yaml, .yml or .json)", dir)
	}
	slices.Sort(files)
	return ImportFiles(ctx, im, dir, files, lookup)
}

// ImportSummary says in one line what an import did.
func ImportSummary(res *adminv1.ImportConfigResponse) string {
	n := map[string]int{}
	for _, it := range res.GetItems() {
		n[it.GetAction()]++
	}
	counts := fmt.Sprintf("%d created, %d updated, %d deleted, %d unchanged", n["create"], n["update"], n["delete"], n["unchanged"])
	if !res.GetApplied() {
		return fmt.Sprintf("no changes (%s); revision %d", counts, res.GetRevision())
	}
	return fmt.Sprintf("%s; revision %d", counts, res.GetRevision())
}
