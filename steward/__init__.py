"""Stewardship of the lake: what it keeps, what it sends to the national archive, copies of it.

- `ncei`: monthly NetCDF packages of the archived streams for NCEI, with a manifest and a
  submission record per accession in the lake;
- `backup`: incremental copies of the lake to a folder or another bucket, verified by
  checksum, and a restore from them;
- `retention`: each stream's retention rules from the registry, enforced and logged;
- `stream_plans`: Data Stream Plans generated from the registry and the lake.

It stands on the lake core only (`lake`); the `lake` command line drives it.
"""
