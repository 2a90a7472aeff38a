// Placeholder until tools/gen runs.
