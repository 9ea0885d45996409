"""VN_AQI: sub-indices, NowCast, overall value and categories against hand-computed numbers."""

from __future__ import annotations

import pytest

from ioc.core.aqi import category, hourly_aqi, load_table, nowcast, round_up, sub_index

# Decision 1459/QĐ-TCMT, table 2, typed here independently of the shipped JSON.
PUBLISHED = {
    "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
    "co": (0, 10000, 30000, 45000, 60000, 90000, 120000, 150000),
    "o3": (0, 160, 200, 300, 400, 800, 1000, 1200),
}


def test_shipped_table_matches_the_decision() -> None:
    table = load_table()
    assert table.index == (0, 50, 100, 150, 200, 300, 400, 500)
    assert dict(table.breakpoints) == {
        k: tuple(float(v) for v in bps) for k, bps in PUBLISHED.items()
    }


def test_constant_pm25_35_gives_70() -> None:
    c = nowcast([35.0] * 12)
    assert c == pytest.approx(35.0)
    # 50 + (35 - 25) * (100 - 50) / (50 - 25)
    assert sub_index("pm25", 35.0) == pytest.approx(70.0)
    result = hourly_aqi({"pm25": [35.0] * 12})
    assert result.aqi == 70
    assert result.dominant == "pm25"


@pytest.mark.parametrize(
    ("pollutant", "conc", "expected"),
    [
        ("pm25", 0.0, 0.0),
        ("pm25", 25.0, 50.0),
        ("pm25", 50.0, 100.0),
        ("pm25", 80.0, 150.0),
        ("pm25", 150.0, 200.0),
        ("pm25", 250.0, 300.0),
        ("pm25", 350.0, 400.0),
        ("pm25", 500.0, 500.0),
        ("pm25", 900.0, 500.0),  # beyond the table
        ("pm10", 100.0, 75.0),  # 50 + (100-50)*50/100
        ("pm10", 385.0, 250.0),  # 200 + (385-350)*100/70
        ("no2", 150.0, 75.0),
        ("no2", 450.0, 125.0),  # 100 + (450-200)*50/500
        ("so2", 125.0, 50.0),
        ("so2", 450.0, 125.0),  # 100 + (450-350)*50/200
        ("co", 10000.0, 50.0),
        ("co", 20000.0, 75.0),
        ("o3", 180.0, 75.0),  # 1-hour table: 50 + (180-160)*50/40
        ("o3", 1100.0, 450.0),
    ],
)
def test_sub_index_interpolates_between_breakpoints(
    pollutant: str, conc: float, expected: float
) -> None:
    assert sub_index(pollutant, conc) == pytest.approx(expected)


def test_rounding_is_upwards_but_ignores_float_noise() -> None:
    assert round_up(50.0) == 50
    assert round_up(50.0001) == 51
    assert round_up(70.00000000001) == 70
    # Just over the first PM2.5 breakpoint the index leaves the "good" band.
    assert hourly_aqi({"pm25": [25.01, 25.01, 25.01]}).aqi == 51


def test_nowcast_weights_recent_hours() -> None:
    # cmin/cmax = 0.5 -> w = 0.5: (40 + 0.5*20) / 1.5
    assert nowcast([40.0, 20.0]) == pytest.approx(50.0 / 1.5)
    # cmin/cmax = 0.1 -> w clamps to 0.5: (100 + 0.5*10 + 0.25*10) / 1.75
    assert nowcast([100.0, 10.0, 10.0]) == pytest.approx(107.5 / 1.75)
    # cmin/cmax = 0.8 -> w = 0.8: (50 + 0.8*40) / 1.8
    assert nowcast([50.0, 40.0]) == pytest.approx(82.0 / 1.8)


def test_nowcast_skips_missing_hours_and_older_than_twelve() -> None:
    # w = 30/60 = 0.5; hours 0, 2 present: (60 + 0.25*30) / 1.25
    assert nowcast([60.0, None, 30.0]) == pytest.approx(67.5 / 1.25)
    # The 13th hour (age 12) is outside the window, so cmin stays 30.
    assert nowcast([30.0] * 12 + [1.0]) == pytest.approx(30.0)


@pytest.mark.parametrize(
    "series",
    [
        [],
        [40.0],
        [40.0, None, None, 30.0, 30.0],
        [None, None, 40.0, 40.0],
        [None, 40.0, None, 40.0],
    ],
)
def test_nowcast_needs_two_of_the_last_three_hours(series: list[float | None]) -> None:
    assert nowcast(series) is None


def test_nowcast_accepts_two_of_three_in_any_position() -> None:
    assert nowcast([None, 40.0, 40.0]) == pytest.approx(40.0)
    assert nowcast([40.0, 40.0, None]) == pytest.approx(40.0)
    assert nowcast([0.0, 0.0, 0.0]) == 0.0


def test_overall_is_the_largest_sub_index() -> None:
    result = hourly_aqi(
        {
            "pm25": [20.0] * 12,  # 40
            "pm10": [100.0] * 12,  # 75
            "no2": [450.0],  # 125
            "co": [None],
        }
    )
    assert result.sub_indices == {"pm25": 40, "pm10": 75, "no2": 125}
    assert result.aqi == 125
    assert result.dominant == "no2"


def test_no_overall_aqi_without_pm() -> None:
    result = hourly_aqi({"pm25": [30.0], "no2": [450.0]})  # PM2.5 has no NowCast
    assert result.aqi is None
    assert result.dominant is None
    assert result.sub_indices == {"no2": 125}


@pytest.mark.parametrize(
    ("aqi", "name_vi", "name_en", "hex_colour"),
    [
        (0, "Tốt", "Good", "#00E400"),
        (50, "Tốt", "Good", "#00E400"),
        (51, "Trung bình", "Moderate", "#FFFF00"),
        (100, "Trung bình", "Moderate", "#FFFF00"),
        (101, "Kém", "Poor", "#FF7E00"),
        (150, "Kém", "Poor", "#FF7E00"),
        (151, "Xấu", "Bad", "#FF0000"),
        (200, "Xấu", "Bad", "#FF0000"),
        (201, "Rất xấu", "Very bad", "#8F3F97"),
        (300, "Rất xấu", "Very bad", "#8F3F97"),
        (301, "Nguy hại", "Hazardous", "#7E0023"),
        (500, "Nguy hại", "Hazardous", "#7E0023"),
        (50.3, "Trung bình", "Moderate", "#FFFF00"),
    ],
)
def test_categories_at_band_edges(aqi: float, name_vi: str, name_en: str, hex_colour: str) -> None:
    cat = category(aqi)
    assert (cat.name_vi, cat.name_en, cat.hex) == (name_vi, name_en, hex_colour)
    assert cat.low <= round_up(aqi) <= cat.high


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="not a valid"):
        sub_index("pm25", -1.0)
    with pytest.raises(ValueError, match="not a valid"):
        category(-5)
    with pytest.raises(KeyError):
        sub_index("lead", 1.0)


def test_table_shape() -> None:
    table = load_table()
    assert len(table.categories) == 6
    for bps in table.breakpoints.values():
        assert len(bps) == len(table.index)
        assert list(bps) == sorted(bps)
