"""Every Betacell setting, typed, in one place.

Values come from environment variables with the prefix ``BETACELL_`` (or a ``.env`` file in the
working directory). Paths are resolved once, so every stage agrees on where data lives.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from flows.errors import BetacellError
from flows.redaction import register_connection_string, register_secret

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BETACELL_", env_file=".env", extra="ignore")

    # Where everything lives
    data_dir: Path = Field(
        default=Path("data"), description="Root of raw, build and published data"
    )
    snapshot_dir: Path | None = Field(
        default=None, description="Shipped offline snapshot; defaults to <data_dir>/snapshot"
    )
    outcomes_dir: Path | None = Field(
        default=None, description="Curated outcome extraction sheets; defaults to <data_dir>/outcomes"
    )
    topic_file: Path = Field(
        default=PACKAGE_DIR / "topic.toml", description="Search topic (conditions, interventions)"
    )
    dbt_project_dir: Path = Field(default=REPO_DIR / "dbt_project")

    # ClinicalTrials.gov API v2
    ctgov_base_url: str = "https://clinicaltrials.gov/api/v2"
    ctgov_requests_per_second: float = Field(default=1.0, gt=0)
    ctgov_page_size: int = Field(default=1000, ge=1, le=1000)
    ctgov_overlap_days: int = Field(default=2, ge=1)
    ctgov_max_records: int = Field(
        default=50_000, ge=1, description="A topic search returning more records fails")

    # PubMed / Europe PMC / CTIS (used by later stages; declared here so every URL is configurable)
    pubmed_base_url: str = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
    ncbi_api_key: SecretStr | None = None
    ncbi_email: str | None = None
    europepmc_base_url: str = "https://www.ebi.ac.uk/europepmc/webservices/rest"
    ctis_base_url: str = "https://euclinicaltrials.eu/ctis-public-api"

    # HTTP discipline shared by every client
    http_timeout_seconds: float = Field(default=60.0, gt=0)
    http_max_attempts: int = Field(
        default=6, ge=1, description="Attempts per request, first included"
    )
    http_backoff_initial_seconds: float = Field(default=2.0, ge=0)
    http_backoff_max_seconds: float = Field(default=120.0, ge=0)
    # Bounds, so a misbehaving server can never hang a run or exhaust memory
    http_request_deadline_seconds: float = Field(
        default=300.0, gt=0, description="Total time for one request, body included")
    http_max_retry_after_seconds: float = Field(
        default=600.0, ge=0, description="A longer Retry-After fails the source for this run")
    http_max_response_bytes: int = Field(
        default=256 * 1024**2, gt=0, description="Largest (decompressed) response body kept in memory")
    http_max_download_bytes: int = Field(
        default=40 * 1024**3, gt=0, description="Largest (decompressed) file downloaded to disk")
    source_deadline_seconds: float = Field(
        default=30 * 60.0, gt=0, description="Time budget of one source's ingest")
    # A host that cannot be reached (its name does not resolve, the connection is refused) is
    # retried after these waits, for the whole source, then the source fails (60 s at most).
    http_unreachable_retry_delays_seconds: Annotated[list[float], NoDecode] = Field(
        default=[5.0, 20.0, 30.0])
    bulk_deadline_seconds: float = Field(
        default=4 * 3600.0, gt=0,
        description="Time budget of the whole-registry archive (--full --source live)")
    # A source's ingest task is retried after these delays when it failed transiently
    # (timeouts, 429, 5xx after the client's own retries); [] = no task retry.
    source_retry_delays_seconds: Annotated[list[int], NoDecode] = Field(default=[60, 300])

    # Alerts: a failed run posts {"text": ...} here (Slack/Teams/any webhook); see README
    alert_webhook_url: str | None = None

    # Failure policy: a critical source that fails publishes nothing; any other source that fails
    # keeps its last good data, is marked stale and alerted, and the run publishes.
    critical_sources: Annotated[list[str], NoDecode] = Field(default=["ctgov"])
    # Referential closure: at most this many referenced-but-missing ids fetched by id per run
    closure_max_fetches: int = Field(default=200, ge=0)
    # An id the registry did not know is asked again after this wait at the earliest (doubling
    # with each further "not found", up to the maximum): scheduled sheet runs stay local
    closure_not_found_retry_hours: float = Field(default=24.0, ge=24.0)
    closure_not_found_max_retry_hours: float = Field(default=7 * 24.0, ge=24.0)

    # Loading
    max_reject_share: float = Field(
        default=0.02, ge=0, le=1, description="A run with a larger share of rejected records fails"
    )
    load_batch_records: int = Field(default=5000, ge=1)
    # Quarantine (flows/quarantine.py): records whose own numbers are impossible, or that the mart
    # gate traces failing rows to, are kept out of the marts and the rest publishes; more than
    # this many records, or more than this share of the trials, is systemic: nothing publishes.
    max_quarantine: int = Field(default=5, ge=0)
    max_quarantine_share: float = Field(default=0.01, ge=0, le=1)
    duckdb_memory_limit: str = "3GB"
    duckdb_threads: int = Field(default=2, ge=1)

    # Lakehouse (optional; see README "Scaling out"). Unset catalog = single file only.
    # The catalog as DuckDB takes it after ``ducklake:`` (postgres:dbname=... host=... user=...,
    # or a local *.ducklake file); the data path is s3://bucket/prefix/ or a local directory.
    lake_catalog: str | None = None
    lake_data_path: str | None = None
    # Schemas copied to the lake besides marts, e.g. "raw,staging"
    lake_include: Annotated[list[str], NoDecode] = Field(default=[])
    lake_publish_attempts: int = Field(
        default=5, ge=1, description="Whole-transaction attempts when writers conflict")
    # S3-compatible object storage for the lake's data files
    s3_endpoint: str | None = None
    s3_key_id: str | None = None
    s3_secret: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_url_style: Literal["path", "vhost"] = "vhost"
    s3_use_ssl: bool = True

    # Parallel stages on Dask (flows/parallel.py): a local cluster of this many worker
    # processes, or an existing cluster's scheduler address (tcp://host:8786)
    dask_workers: int = Field(default=2, ge=1)
    dask_address: str | None = None

    @model_validator(mode="after")
    def _register_secrets(self) -> Settings:
        """Every secret-bearing setting is masked wherever it would appear: the keys, the S3
        secret, the lake catalog's password (libpq URI or password= form) and the webhook URL
        (a Slack or Teams webhook URL is itself the credential)."""
        for secret in (self.ncbi_api_key, self.s3_secret, self.alert_webhook_url):
            register_secret(secret)
        register_connection_string(self.lake_catalog)
        return self

    @field_validator("lake_include", mode="before")
    @classmethod
    def _lake_schemas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("critical_sources", "source_retry_delays_seconds",
                     "http_unreachable_retry_delays_seconds", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("http_unreachable_retry_delays_seconds")
    @classmethod
    def _unreachable_waits_are_brief(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value) or sum(value) > 60:
            raise ValueError("the waits must be >= 0 s and add up to 60 s at most "
                             f"(got {', '.join(f'{d:g}' for d in value)})")
        return value

    @field_validator("ctgov_base_url", "pubmed_base_url", "europepmc_base_url", "ctis_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    # Derived locations -------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def raw_dir(self) -> Path:
        return self.data_path / "raw"

    @property
    def build_dir(self) -> Path:
        return self.data_path / "build"

    @property
    def build_database(self) -> Path:
        # Same basename as the published file: DuckDB views remember their catalog name.
        return self.build_dir / "warehouse.duckdb"

    @property
    def warehouse_path(self) -> Path:
        return self.data_path / "warehouse.duckdb"

    @property
    def marts_dir(self) -> Path:
        return self.data_path / "marts"

    @property
    def quality_dir(self) -> Path:
        return self.data_path / "quality"

    @property
    def outcomes_path(self) -> Path:
        base = self.outcomes_dir if self.outcomes_dir is not None else self.data_path / "outcomes"
        return base.expanduser().resolve()

    @property
    def snapshot_path(self) -> Path:
        base = self.snapshot_dir if self.snapshot_dir is not None else self.data_path / "snapshot"
        return base.expanduser().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"BETACELL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            + (f" (got {e['input']!r:.60})" if isinstance(e.get("input"), str) else "")
            for e in exc.errors())
        raise BetacellError(f"invalid settings: {problems}") from None
    except SettingsError as exc:
        raise BetacellError(f"invalid settings: {exc}") from None
    return settings


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
