"""The `lake` command groups, one module each (`register(app)` adds its commands), plus
`common` for what they share; `coastlake.cli` registers them all."""
