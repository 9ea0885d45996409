"""Simulator step of the data path: every tunable of the four generators, in one frozen place.

Defaults are meant to be plausible for Hạ Long (about 300,000 people in 33 wards and communes):
rates are per 1,000 residents so that volumes follow ward population.
"""

from __future__ import annotations

from dataclasses import dataclass

# (name, weight) pairs; weights need not sum to 1.
Mix = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SimParams:
    """Defaults of the simulators; override with dataclasses.replace(SimParams(), ...)."""

    # Multiplies every arrival rate (dossiers, payments, feedback), not the station count.
    volume_scale: float = 1.0
    # Simulate this many days before the start silently, so that cases open at the start
    # (and resolutions due in the first weeks) look like a city that has been running.
    warmup_days: int = 50
    # Trend reference date for the rising online and cashless shares.
    trend_reference: str = "2025-01-01"

    # -- working calendar (one-stop counters, "bộ phận một cửa") ------------------------
    # Public holidays (inclusive local date ranges) on which offices are closed; approximate
    # official schedules for 2024-2027 (Tết = Lunar New Year).
    holidays: tuple[tuple[str, str], ...] = (
        ("2024-01-01", "2024-01-01"),
        ("2024-02-08", "2024-02-14"),
        ("2024-04-18", "2024-04-18"),
        ("2024-04-29", "2024-05-01"),
        ("2024-09-02", "2024-09-03"),
        ("2025-01-01", "2025-01-01"),
        ("2025-01-25", "2025-02-02"),
        ("2025-04-07", "2025-04-07"),
        ("2025-04-30", "2025-05-02"),
        ("2025-09-01", "2025-09-02"),
        ("2026-01-01", "2026-01-01"),
        ("2026-02-14", "2026-02-22"),
        ("2026-04-27", "2026-04-27"),
        ("2026-04-30", "2026-05-01"),
        ("2026-09-01", "2026-09-02"),
        ("2027-01-01", "2027-01-01"),
        ("2027-02-05", "2027-02-10"),
    )
    # Names of the date ranges above that are Tết, by start date (for the tet_rush scenario).
    tet_starts: tuple[str, ...] = ("2024-02-08", "2025-01-25", "2026-02-14", "2027-02-05")

    # -- dossiers (hồ sơ thủ tục hành chính) --------------------------------------------
    dossiers_per_1000_per_workday: float = 4.0
    # Saturday-morning counter intake relative to a weekday morning.
    dossier_saturday_factor: float = 0.3
    # Monday..Friday multipliers of the daily volume.
    dossier_weekday_factors: tuple[float, ...] = (1.25, 1.05, 1.0, 0.95, 0.85)
    procedure_mix: Mix = (
        ("certification", 0.34),
        ("civil_status", 0.20),
        ("land", 0.15),
        ("labour_social", 0.12),
        ("justice", 0.08),
        ("business_registration", 0.07),
        ("construction", 0.04),
    )
    # Statutory processing time in working days, by procedure field (one drawn per dossier).
    due_working_days: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("certification", (1,)),
        ("civil_status", (1, 3, 5)),
        ("land", (10, 15, 30)),
        ("labour_social", (7, 10)),
        ("justice", (3, 5)),
        ("business_registration", (3,)),
        ("construction", (15, 20)),
    )
    # Fee ranges in VND (min, max), rounded to 1,000; some procedures are free.
    fee_ranges: tuple[tuple[str, tuple[int, int]], ...] = (
        ("certification", (2_000, 30_000)),
        ("civil_status", (0, 8_000)),
        ("land", (0, 500_000)),
        ("labour_social", (0, 0)),
        ("justice", (0, 50_000)),
        ("business_registration", (100_000, 100_000)),
        ("construction", (75_000, 150_000)),
    )
    # Online share of new dossiers at the trend reference, its yearly growth and its bounds;
    # communes (xã) lag behind urban wards.
    online_share: float = 0.68
    online_growth_per_year: float = 0.08
    online_bounds: tuple[float, float] = (0.5, 0.9)
    online_commune_offset: float = -0.12
    postal_share: float = 0.03
    full_online_share_of_online: float = 0.6
    digitized_share_offline: float = 0.85
    e_signed_share_online: float = 0.85
    e_signed_share_offline: float = 0.3
    supplement_share: float = 0.08
    supplement_answered_share: float = 0.85
    withdrawn_share: float = 0.01
    rejected_share: float = 0.02
    # Share of resolved dossiers resolved after their due date.
    dossier_late_share: float = 0.05
    # Mean delay past due of a late dossier, in working days.
    dossier_late_mean_days: float = 2.0

    # -- payments (thanh toán không dùng tiền mặt) --------------------------------------
    retail_payments_per_1000_per_day: float = 350.0
    public_fee_payments_per_1000_per_workday: float = 2.5
    tax_payments_per_1000_per_workday: float = 0.6
    utility_payments_per_1000_per_day: float = 3.0
    residents_per_retail_merchant: int = 40
    market_stall_share: float = 0.45
    retail_weekend_factor: float = 1.15
    # Cashless share at public counters (fees, tax) at the trend reference, yearly growth, bounds.
    public_cashless_share: float = 0.55
    public_cashless_growth_per_year: float = 0.12
    public_cashless_bounds: tuple[float, float] = (0.2, 0.97)
    tax_cashless_bonus: float = 0.15
    failed_share: float = 0.015
    refunded_share: float = 0.004
    # Median amount (VND) and log-sd by merchant type.
    amount_median: tuple[tuple[str, int], ...] = (
        ("market_stall", 45_000),
        ("shop", 120_000),
        ("utility_bill", 350_000),
        ("tax", 1_500_000),
    )
    amount_log_sd: tuple[tuple[str, float], ...] = (
        ("market_stall", 0.8),
        ("shop", 1.0),
        ("utility_bill", 0.6),
        ("tax", 1.2),
    )
    public_fee_schedule: tuple[int, ...] = (10_000, 20_000, 30_000, 50_000, 100_000, 200_000)
    market_stall_channels: Mix = (("vietqr", 0.75), ("e_wallet", 0.2), ("bank_transfer", 0.05))
    shop_channels: Mix = (
        ("vietqr", 0.5),
        ("pos_card", 0.25),
        ("e_wallet", 0.2),
        ("bank_transfer", 0.05),
    )
    public_fee_channels: Mix = (
        ("public_gateway", 0.4),
        ("vietqr", 0.35),
        ("pos_card", 0.15),
        ("bank_transfer", 0.1),
    )
    tax_channels: Mix = (("bank_transfer", 0.5), ("public_gateway", 0.4), ("vietqr", 0.1))
    utility_channels: Mix = (("bank_transfer", 0.4), ("e_wallet", 0.35), ("vietqr", 0.25))

    # -- feedback (phản ánh kiến nghị) --------------------------------------------------
    feedback_per_1000_per_day: float = 0.5
    feedback_categories: Mix = (
        ("urban_order", 0.25),
        ("environment", 0.22),
        ("traffic", 0.15),
        ("utilities", 0.15),
        ("public_services", 0.10),
        ("other", 0.08),
        ("security", 0.05),
    )
    feedback_urgency: Mix = (("normal", 0.75), ("complex", 0.15), ("urgent", 0.10))
    feedback_channels: Mix = (
        ("app", 0.5),
        ("zalo", 0.2),
        ("hotline", 0.15),
        ("web", 0.1),
        ("counter", 0.05),
    )
    # Deadlines: urgent reports in calendar hours, the others in working days.
    feedback_urgent_hours: int = 24
    feedback_due_working_days: tuple[tuple[str, int], ...] = (("normal", 5), ("complex", 15))
    feedback_rejected_share: float = 0.08
    feedback_late_share: float = 0.12
    feedback_rated_share: float = 0.4
    # Rating weights 1..5 for reports closed on time; late ones shift towards low ratings.
    rating_weights_on_time: tuple[float, ...] = (0.04, 0.05, 0.12, 0.32, 0.47)
    rating_weights_late: tuple[float, ...] = (0.25, 0.2, 0.25, 0.2, 0.1)

    # -- air quality (quan trắc không khí) ----------------------------------------------
    aq_period_minutes: int = 15
    # A ward gets one station per this many residents (at least one), capped; below the
    # minimum population it has none.
    residents_per_station: int = 10_000
    max_stations_per_ward: int = 2
    station_min_population: int = 5_000
    # City-wide PM2.5 level (µg/m³) in an average month, and monthly factors Jan..Dec
    # (dry north-east monsoon winters are much dirtier than rainy summers).
    pm25_base: float = 26.0
    pm25_monthly: tuple[float, ...] = (
        1.6, 1.45, 1.2, 1.0, 0.8, 0.62, 0.55, 0.6, 0.75, 1.0, 1.3, 1.55,
    )  # fmt: skip
    # Wards with coal mining and port activity: more PM (coarse dust) and SO2.
    industrial_wards: tuple[str, ...] = ("06649", "06652", "06664", "06667", "06670")
    industrial_pm_factor: float = 1.35
    # AR(1) coefficients per 15-minute step and stationary log-sd of the regional and local terms.
    pm_regional_phi: float = 0.985
    pm_regional_sd: float = 0.35
    pm_local_phi: float = 0.95
    pm_local_sd: float = 0.2
    pm_noise_sd: float = 0.05
    # Diurnal amplitude (log scale) of PM; peaks in the morning and late evening.
    pm_diurnal_amplitude: float = 0.3
    # Occasional city-wide episodes (stagnant air): per 30 days, duration hours, peak factor.
    episodes_per_30_days: float = 2.0
    episode_hours: tuple[float, float] = (12.0, 48.0)
    episode_peak_factor: tuple[float, float] = (1.8, 3.2)
    no2_urban: float = 28.0
    no2_commune: float = 9.0
    no2_rush_factor: float = 1.9
    o3_base: float = 35.0
    o3_day_amplitude: float = 55.0
    so2_base: float = 7.0
    so2_industrial: float = 18.0
    co_base: float = 550.0
    # Share of readings in which one pollutant is missing (sensor gave no value).
    aq_missing_share: float = 0.005


def mix_names(mix: Mix) -> tuple[str, ...]:
    """The names of a mix, in order."""
    return tuple(name for name, _ in mix)


def mix_cum_weights(mix: Mix) -> tuple[float, ...]:
    """Cumulative weights of a mix, for random.choices(cum_weights=...) or bisect."""
    total = 0.0
    out: list[float] = []
    for _, w in mix:
        total += w
        out.append(total)
    return tuple(out)
