package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) newContextAddCmd() *cobra.Command {
	var (
		addr, ca, token, tokenFile string
		use, replace               bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --addr HOST:PORT [--ca FILE] [--token SECRET | --token-file FILE] [--use]",
		Short: "Add a context: a control plane's address, CA file and token",
		Long: `Add a context to weftctl's config file. --ca is kept as an absolute path,
so the context works from any directory; the file is read now to check
that it holds a certificate. --token-file reads the secret from a file,
such as the weft-admin.token the control plane writes on first start, or
from standard input with --token-file -; it keeps the secret out of the
shell's history, which --token does not.

Nothing is sent to the control plane: weftctl whoami checks the context.`,
		Example: `  weftctl context add prod --addr cp.example.com:7400 --ca /etc/weft/weft-ca.pem --token-file weft-admin.token --use
  weftctl context add local --addr 127.0.0.1:7400 --ca /var/lib/weft/weft-ca.pem`,
		Args: args("NAME"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			if err := checkContextName(name); err != nil {
				return err
			}
			c := ctlContext{Name: name, Address: strings.TrimSpace(addr)}
			if !cmd.Flags().Changed("addr") || c.Address == "" {
				return errors.New("--addr is required: the control plane's host:port")
			}
			if _, _, err := net.SplitHostPort(c.Address); err != nil {
				return fmt.Errorf("--addr %q: want host:port: %w", c.Address, err)
			}
			if ca = strings.TrimSpace(ca); ca != "" {
				abs, err := filepath.Abs(ca)
				if err != nil {
					return fmt.Errorf("--ca %s: %w", ca, err)
				}
				if _, err := loadCA(setting{value: abs, from: "--ca"}); err != nil {
					return err
				}
				c.CA = abs
			}
			secret, err := contextToken(cmd, token, tokenFile, a.stdin)
			if err != nil {
				return err
			}
			c.Token = secret

			path, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if old := cfg.find(name); old != nil {
				if !replace {
					return fmt.Errorf("context %q exists in %s (give --replace to overwrite it)", name, path)
				}
				*old = c
			} else {
				cfg.Contexts = append(cfg.Contexts, c)
			}
			if use {
				cfg.CurrentContext = name
			}
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			if a.json() {
				return a.printContext(viewOf(cfg, &c))
			}
			caText := "the system's roots"
			if c.CA != "" {
				caText = "CA " + c.CA
			}
			fmt.Fprintf(a.stdout, "added context %q to %s: %s, %s, token %s\n", name, path, c.Address, caText, tokenState(c.Token != ""))
			switch {
			case use:
				fmt.Fprintf(a.stdout, "switched to context %q\n", name)
			case cfg.CurrentContext == "":
				fmt.Fprintf(a.stdout, "no context is current: use this one with weftctl context use %s\n", name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	// These shadow the global connection flags: here they say what to keep.
	f.StringVar(&addr, "addr", "", "the control plane's host:port (required)")
	f.StringVar(&ca, "ca", "", "PEM file of the CA that signed the control plane's certificate, such as weft-ca.pem beside its database; default the system's roots")
	f.StringVar(&token, "token", "", "secret of the token to send")
	f.StringVar(&tokenFile, "token-file", "", "file holding the token's secret, or - for a line of standard input")
	f.BoolVar(&use, "use", false, "make it the current context")
	f.BoolVar(&replace, "replace", false, "overwrite a context of the same name")
	return cmd
}

// contextToken reads the secret context add keeps from --token or
// --token-file; empty for none.
func contextToken(cmd *cobra.Command, token, file string, stdin io.Reader) (string, error) {
	byFlag, byFile := cmd.Flags().Changed("token"), cmd.Flags().Changed("token-file")
	var s setting
	switch {
	case byFlag && byFile:
		return "", errors.New("give --token or --token-file, not both")
	case byFlag:
		s = setting{value: strings.TrimSpace(token), from: "--token"}
		if s.value == "" {
			return "", errors.New("--token is empty: give the token's secret, or leave --token out to keep none")
		}
	case byFile && file == "-":
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			return "", fmt.Errorf("--token-file -: read a line of standard input: %w", err)
		}
		s = setting{value: strings.TrimSpace(line), from: "--token-file -"}
		if s.value == "" {
			return "", errors.New("--token-file -: the line read from standard input is empty")
		}
	case byFile:
		if file == "" {
			return "", errors.New("--token-file is empty: want the file holding the token's secret")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			// The error names the path: "open x.token: no such file or directory".
			return "", fmt.Errorf("--token-file: %w", err)
		}
		s = setting{value: strings.TrimSpace(string(b)), from: "--token-file " + file}
		if s.value == "" {
			return "", fmt.Errorf("--token-file %s: the file is empty", file)
		}
	default:
		return "", nil
	}
	if err := checkToken(s); err != nil {
		return "", err
	}
	return s.value, nil
}
