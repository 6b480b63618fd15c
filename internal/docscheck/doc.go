// Package docscheck keeps the project's Markdown documentation navigable:
// its tests check that every relative link and #anchor in README.md and
// docs/*.md resolves, that the README links every doc and stays within
// 15 KiB, that each doc opens with an example, and that the README's
// minimal configuration is valid. It has no code of its own.
package docscheck
