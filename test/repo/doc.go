// Package repo checks the repository itself: what is tracked in git.
package repo
