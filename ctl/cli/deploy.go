package cli

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newDeployCmd() *cobra.Command {
	var (
		name    string
		sources string
		wait    waitFlags
	)
	cmd := &cobra.Command{
		Use:   "deploy PATH... | --sources FILE",
		Short: "Deploy service packages, and show deploy history and status",
		Long: `Deploy sends Go source to the control plane, which checks it and stores it
as one new revision; agents pick it up from there.

Each PATH is a .go file or a package directory (its .go files, without
_test.go files and subdirectories). Files from one directory form one
package. --sources FILE adds the paths a sources list names: one .go file or
package directory per line, relative to the list; blank lines and lines
starting with # are skipped. Nothing is stored when any package is refused.
A directory named
like a subcommand (history, show, status) is deployed as ./history.

With --wait, deploy then waits until every connected agent has applied each
package: it prints "deployed on N agents: ..." and exits 0; it exits non-zero
as soon as an agent refuses a package, naming the agent and its error, or
when --wait-timeout passes, naming the agents still pending. Agents that are
not connected are not waited for: they catch up when they connect. When no
agent is connected at all, deploy says so and exits 0. A package whose
source was unchanged is checked all the same. With -o json the deploy
response goes to stdout and what --wait finds to stderr.`,
		Example: `  weftctl deploy ./services/hello
  weftctl deploy hello.go --name greeter
  weftctl deploy ./services/hello ./services/orders -o json
  weftctl deploy ./services/hello --wait --wait-timeout 1m
  weftctl deploy --sources services-sources.txt --wait
  weftctl deploy history hello
  weftctl deploy show hello@3
  weftctl deploy status hello`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !cmd.Flags().Changed("sources") {
				return fmt.Errorf("missing PATH or --sources FILE (usage: %s)", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wait.check(); err != nil {
				return fmt.Errorf("deploy: %w", err)
			}
			if sources != "" {
				listed, err := readSourcesList(sources)
				if err != nil {
					return fmt.Errorf("deploy: %w", err)
				}
				args = append(listed, args...)
			}
			pkgs, err := readPackages(args)
			if err != nil {
				return fmt.Errorf("deploy: %w", err)
			}
			if cmd.Flags().Changed("name") {
				if len(pkgs) != 1 {
					return fmt.Errorf("deploy: --name names one package, but the paths hold %d", len(pkgs))
				}
				if strings.TrimSpace(name) == "" {
					return errors.New("deploy: --name must not be empty")
				}
				pkgs[0].Name = name
			}
			resp, err := call(cmd.Context(), a, "deploy", func(ctx context.Context, c *conn) (*adminv1.DeployResponse, error) {
				return c.packages.Deploy(ctx, &adminv1.DeployRequest{Packages: pkgs})
			})
			if err != nil {
				return err
			}
			if err := a.printDeploy(resp); err != nil {
				return err
			}
			if !wait.wait {
				return nil
			}
			var targets []waitTarget
			for _, d := range resp.GetPackages() {
				targets = append(targets, waitTarget{name: d.GetPackage().GetName(), version: d.GetPackage().GetVersion()})
			}
			return a.waitDeployed(cmd.Context(), targets, wait.timeout)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "package name (default: the Go package name); only with one package")
	cmd.Flags().StringVar(&sources, "sources", "", "deploy the files and directories a sources list names, one per line")
	wait.register(cmd)
	cmd.AddCommand(a.newDeployHistoryCmd(), a.newDeployShowCmd(), a.newDeployStatusCmd())
	return cmd
}

// printDeploy writes what a deploy stored.
func (a *app) printDeploy(resp *adminv1.DeployResponse) error {
	if a.json() {
		return a.printJSON(resp)
	}
	for _, d := range resp.GetPackages() {
		p := d.GetPackage()
		if d.GetUnchanged() {
			fmt.Fprintf(a.stdout, "unchanged %s v%d %s (identical source, nothing deployed)\n",
				p.GetName(), p.GetVersion(), shortHash(p.GetSha256()))
			continue
		}
		services := strings.Join(p.GetServices(), ", ")
		if services == "" {
			services = "none"
		}
		fmt.Fprintf(a.stdout, "deployed %s v%d %s services: %s\n",
			p.GetName(), p.GetVersion(), shortHash(p.GetSha256()), services)
	}
	fmt.Fprintf(a.stdout, "revision %d\n", resp.GetRevision())
	return nil
}

// readSourcesList returns the paths a sources list names, made relative to
// the list's directory; each missing path is reported with its line.
func readSourcesList(list string) ([]string, error) {
	b, err := os.ReadFile(list)
	if err != nil {
		return nil, fmt.Errorf("sources list: %w", err)
	}
	var (
		paths []string
		errs  []error
	)
	for i, line := range strings.Split(string(b), "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(list), p)
		}
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s does not exist", list, i+1, p))
			continue
		}
		paths = append(paths, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s names no files or directories", list)
	}
	return paths, nil
}

// readPackages reads the packages the deploy paths name: a .go file or a
// package directory each, grouped by directory into packages in the order
// they are first named.
func readPackages(paths []string) ([]*adminv1.PackageSource, error) {
	type pkg struct {
		dir   string
		files map[string]string // base name -> path
	}
	var order []*pkg
	byDir := map[string]*pkg{}
	add := func(path string) {
		dir := filepath.Dir(path)
		p := byDir[dir]
		if p == nil {
			p = &pkg{dir: dir, files: map[string]string{}}
			byDir[dir] = p
			order = append(order, p)
		}
		p.files[filepath.Base(path)] = path
	}

	for _, path := range paths {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		info, err := os.Stat(abs)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: no such file or directory", path)
			}
			return nil, err
		}
		if !info.IsDir() {
			switch {
			case !strings.HasSuffix(path, ".go"):
				return nil, fmt.Errorf("%s: not a .go file or a package directory", path)
			case strings.HasSuffix(path, "_test.go"):
				return nil, fmt.Errorf("%s: is a test file; tests are not deployed", path)
			}
			add(abs)
			continue
		}
		entries, err := os.ReadDir(abs)
		if err != nil {
			return nil, fmt.Errorf("read directory %s: %w", path, err)
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			add(filepath.Join(abs, name))
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no .go files to deploy (other than _test.go files)", path)
		}
	}

	out := make([]*adminv1.PackageSource, 0, len(order))
	for _, p := range order {
		names := make([]string, 0, len(p.files))
		for n := range p.files {
			names = append(names, n)
		}
		sort.Strings(names)
		src := &adminv1.PackageSource{}
		var firstPkg, firstFile string
		for _, n := range names {
			path := p.files[n]
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", rel(path), err)
			}
			switch pn := packageName(path, b); {
			case pn == "":
				// Unparsable; the control plane reports it with file:line.
			case firstPkg == "":
				firstPkg, firstFile = pn, path
			case pn != firstPkg:
				return nil, fmt.Errorf("%s is package %s but %s is package %s; a directory holds one package",
					rel(path), pn, rel(firstFile), firstPkg)
			}
			src.Files = append(src.Files, &adminv1.SourceFile{Name: n, Content: b})
		}
		out = append(out, src)
	}
	return out, nil
}

// packageName returns the Go package name of a file, or "" when its package
// clause does not parse (the control plane then reports it with file:line).
func packageName(path string, src []byte) string {
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.PackageClauseOnly)
	if err != nil {
		return ""
	}
	return f.Name.Name
}

// rel shortens an absolute path to one relative to the working directory
// when that is shorter, for messages.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && len(r) < len(path) {
		return r
	}
	return path
}
