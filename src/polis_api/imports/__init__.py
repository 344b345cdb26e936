"""CSV imports (docs/imports.md): a voter file in, households, contacts,
contact-households and list members out."""
