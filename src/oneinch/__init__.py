"""oneinch: an open computational camera."""
