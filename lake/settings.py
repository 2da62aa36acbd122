"""The one settings object: environment variables with the LAKE_ prefix, plus AWS_*."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The sample registry shipped inside the repository; its sources are recorded real files.
SAMPLE_REGISTRY = Path(__file__).resolve().parent.parent / "registry" / "sample.yaml"


class Settings(BaseSettings):
    """Where the lake lives and what feeds it. The same code runs on a folder and on S3."""

    model_config = SettingsConfigDict(env_prefix="LAKE_", extra="ignore")

    root: str = Field(
        default="./lake-data",
        description="Lake root: a local folder or s3://bucket/prefix on any S3-compatible store.",
    )
    registry: str = Field(
        default=str(SAMPLE_REGISTRY), description="Path of the stream registry YAML file."
    )
    dask_scheduler: str | None = Field(
        default=None, description="Address of a Dask scheduler; unset means a local cluster."
    )
    admin_token: str | None = Field(
        default=None, description="Token required by admin routes of the server."
    )
    provider_tokens: dict[str, str] = Field(
        default_factory=dict,
        description='Upload tokens per provider, as JSON {"<provider name>": "<token>"}: '
        "a provider's token uploads files to that provider's streams only.",
    )
    upload_max_bytes: int = Field(
        default=256 * 2**20, description="Most bytes one contributed file may have (else 413)."
    )
    compact_after_files: int = Field(
        default=64, description="Compact a partition once it holds more files than this."
    )
    vacuum_retention_hours: int = Field(
        default=168, description="Files replaced by compaction are removed after this long."
    )
    read_cache_mb: int = Field(
        default=256,
        description="Memory for station series already read (Lake.series, station downloads); "
        "0 turns the cache off. Entries name the table files they came from, so a write "
        "never leaves one stale.",
    )
    sql_default_rows: int = Field(
        default=10_000, description="Rows a /sql request returns when it names no limit."
    )
    sql_max_rows: int = Field(default=100_000, description="Most rows one /sql request returns.")
    sql_timeout_s: float = Field(default=10.0, description="DuckDB time one /sql request may use.")
    sql_memory_limit: str = Field(default="2GB", description="DuckDB memory for /sql requests.")
    sql_threads: int = Field(default=2, description="DuckDB threads for /sql requests.")
    sql_max_bytes: int = Field(
        default=64 * 2**20, description="Most bytes one /sql answer may carry (else 413)."
    )
    sql_temp_limit: str = Field(
        default="1GB", description="Disk /sql queries may spill to, in a private folder."
    )
    public_url: str | None = Field(
        default=None,
        description="The server's public address (https://host/prefix) that links are built "
        "from; unset: the address it listens on. The Host header is never used.",
    )
    cors_origins: str = Field(
        default="*",
        description="Web origins (comma-separated, or *) whose pages may read the public "
        "read-only services (tiles, WMS, STAC, tabledap, OPeNDAP); empty: none. Admin routes "
        "never answer other origins.",
    )
    max_requests: int = Field(
        default=16, description="Data and map requests the server works on at once."
    )
    max_requests_per_client: int = Field(
        default=6, description="Data and map requests one client address may have open."
    )
    fetch_max_bytes: int = Field(
        default=512 * 2**20,
        description="Most bytes one harvested response may have once decompressed; a stream's "
        "`max_bytes` in the registry overrides it.",
    )
    fetch_deadline_s: float = Field(
        default=600.0, description="Wall time one harvest request may take, retries included."
    )
    netcdf_max_decoded_bytes: int = Field(
        default=4 * 2**30, description="Most bytes a harvested NetCDF may decode to."
    )
    backup_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint of backup targets (lake backup/verify/restore), when they "
        "live on another store than the lake (Backblaze B2, say); unset: the lake's.",
    )
    backup_access_key_id: str | None = Field(default=None, description="Key of backup targets.")
    backup_secret_access_key: str | None = Field(
        default=None, description="Secret of backup targets."
    )
    backup_region: str | None = Field(default=None, description="Region of backup targets.")

    # Standard AWS variables (no LAKE_ prefix), read so any S3-compatible store works.
    aws_access_key_id: str | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: str | None = Field(
        default=None, validation_alias="AWS_SECRET_ACCESS_KEY"
    )
    aws_session_token: str | None = Field(default=None, validation_alias="AWS_SESSION_TOKEN")
    aws_region: str | None = Field(default=None, validation_alias="AWS_REGION")
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def region(self) -> str:
        return self.aws_region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once from the environment; tests build their own `Settings(...)`."""
    return Settings()
