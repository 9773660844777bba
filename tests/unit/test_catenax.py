"""Catena-X records: the official example payloads, the schemas, bad input, facts, extensions."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message_factory import GetMessageClass
from hypothesis import given
from hypothesis import strategies as st

from protos.scfed.v1 import records_pb2 as pb
from scfed.catenax import (
    EXTENSION_KINDS,
    KINDS,
    UNITS,
    WAFER_EQUIVALENTS,
    RawFact,
    _codec,
    _model,
    detect_kind,
    facts,
    iso_monday,
    parse_extension,
    parse_payload,
    to_json,
)
from scfed.catenax._scalars import json_number
from scfed.errors import ImportRowError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "catenax"
ASSET = "urn:uuid:48878d48-6f1d-47f5-8ded-a441d0d879df"
GROUP = "0157ba42-d2a8-4e28-8565-7b07830c1110"
DELETE = object()


def example(kind: str) -> Any:
    return json.loads((VECTORS / f"{kind}.json").read_text())


def schema(kind: str) -> Any:
    return json.loads((VECTORS / f"{kind}-schema.json").read_text())


def mutated(kind: str, *path: str | int, value: object) -> Any:
    """The example payload of ``kind`` with the value at ``path`` replaced (or deleted)."""
    payload = example(kind)
    target = payload
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


def refusal(kind: str, payload: object) -> str:
    with pytest.raises(ImportRowError) as caught:
        parse_payload(kind, payload, source="in.json")
    return str(caught.value)


# ---- the official examples ----


def test_kinds_are_the_aspect_models() -> None:
    assert KINDS == (
        "WeekBasedMaterialDemand",
        "WeekBasedCapacityGroup",
        "ItemStock",
        "PlannedProductionOutput",
        "DeliveryInformation",
        "DaysOfSupply",
        "DemandAndCapacityNotification",
        "ShortTermMaterialDemand",
    )


def test_every_aspect_model_has_an_example_and_a_schema() -> None:
    assert {p.name for p in VECTORS.iterdir()} == {
        name for kind in KINDS for name in (f"{kind}.json", f"{kind}-schema.json")
    }


@pytest.mark.parametrize("kind", KINDS)
def test_example_is_recognised(kind: str) -> None:
    assert detect_kind(example(kind)) == kind


@pytest.mark.parametrize("kind", KINDS)
def test_example_round_trips_field_by_field(kind: str) -> None:
    original = example(kind)
    record = parse_payload(kind, original, source=f"{kind}.json")
    back = to_json(record)
    assert back == original
    assert json.loads(json.dumps(back)) == original
    # Stored bytes decode to the same record: what the node's store keeps is enough.
    assert to_json(type(record).FromString(record.SerializeToString())) == original


def test_numbers_are_kept_as_canonical_decimal_text() -> None:
    demand = parse_payload(
        "WeekBasedMaterialDemand", example("WeekBasedMaterialDemand"), source="in.json"
    )
    assert isinstance(demand, pb.WeekBasedMaterialDemand)
    assert demand.demand_series[0].demands[0].demand == "1000"  # written 1E+3
    group = parse_payload(
        "WeekBasedCapacityGroup", example("WeekBasedCapacityGroup"), source="in.json"
    )
    assert isinstance(group, pb.WeekBasedCapacityGroup)
    capacity = group.capacities.items[0]
    assert (capacity.agreed_capacity, capacity.delta_production_result) == ("1800", "400")
    threshold = group.demand_volatility_parameters.rolling_horizon_alert_thresholds.items[0]
    assert threshold.relative_negative_deviation == "0.3"
    stock = parse_payload("ItemStock", example("ItemStock"), source="in.json")
    assert isinstance(stock, pb.ItemStock)
    assert stock.positions[0].allocated_stocks[0].quantity_on_allocated_stock.value == "20"


def test_decimal_input_is_kept_exactly() -> None:
    text = (VECTORS / "DaysOfSupply.json").read_text().replace("3.51", "3.510000001")
    record = parse_payload("DaysOfSupply", json.loads(text, parse_float=Decimal), source="d.json")
    assert isinstance(record, pb.DaysOfSupply)
    amount = record.allocated_days_of_supply[0].amount_of_allocated_days_of_supply[0]
    assert amount.days_of_supply == "3.510000001"


def test_an_empty_optional_array_stays_apart_from_an_absent_one() -> None:
    empty = mutated("WeekBasedCapacityGroup", "supplierLocations", value=[])
    assert to_json(parse_payload("WeekBasedCapacityGroup", empty, source="g.json")) == empty
    absent = mutated("WeekBasedCapacityGroup", "supplierLocations", value=DELETE)
    back = to_json(parse_payload("WeekBasedCapacityGroup", absent, source="g.json"))
    assert back == absent
    assert "supplierLocations" not in back


def test_optional_scalars_stay_absent() -> None:
    payload = mutated(
        "DeliveryInformation", "positions", 0, "deliveries", 0, "incoterm", value=DELETE
    )
    del payload["positions"][0]["orderPositionReference"]
    record = parse_payload("DeliveryInformation", payload, source="d.json")
    assert to_json(record) == payload


# ---- the table of rules against the official schemas ----


def _resolved(document: Any, node: Any) -> Any:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in node:  # the demand category variants share one shape
        node = _resolved(document, node["oneOf"][0])
    return node


def _agrees(document: Any, node: Any, model: Any, path: str) -> None:
    node = _resolved(document, node)
    rules = _model.RULES[model]
    fields = {fd.json_name: fd for fd in model.DESCRIPTOR.fields}
    assert set(fields) == set(node["properties"]), path
    required = {name for name, fd in fields.items() if rules[fd.name].required}
    assert required == set(node.get("required", ())), path
    for name, fd in fields.items():
        _property_agrees(document, node["properties"][name], fd, rules[fd.name], f"{path}.{name}")


def _property_agrees(document: Any, prop: Any, fd: Any, rule: Any, path: str) -> None:
    prop = _resolved(document, prop)
    assert rule.array == (prop.get("type") == "array"), path
    if rule.array:
        assert (rule.min_items, prop.get("maxItems", rule.max_items)) == (
            prop.get("minItems", 0),
            rule.max_items,
        ), path
        prop = _resolved(document, prop["items"])
        if not fd.is_repeated:  # an optional array's holder
            fd = fd.message_type.fields_by_name["items"]
    if rule.scalar is None:
        _agrees(document, prop, GetMessageClass(fd.message_type), path)
        return
    assert (prop["type"] == "number") == (rule.scalar.dump is json_number), path
    for value in prop.get("enum", ()):
        assert rule.scalar.parse(value) == value, path


@pytest.mark.parametrize("kind", KINDS)
def test_rules_agree_with_the_schema(kind: str) -> None:
    document = schema(kind)
    _agrees(document, document, _model.MODELS[kind], "$")


def test_every_record_field_has_a_rule_matching_its_presence() -> None:
    for model, rules in _model.RULES.items():
        assert set(rules) == {fd.name for fd in model.DESCRIPTOR.fields}, model
        for fd in model.DESCRIPTOR.fields:
            rule = rules[fd.name]
            if rule.array:
                assert fd.is_repeated == rule.required, fd.full_name
            elif rule.scalar is not None:
                assert fd.has_presence != rule.required, fd.full_name


def test_units_are_the_schemas_units_and_the_wafer_units() -> None:
    for kind in KINDS:
        enums = schema(kind)["components"]["schemas"].get("ItemUnitEnumeration")
        if enums is not None:
            assert set(enums["enum"]) == UNITS - set(WAFER_EQUIVALENTS), kind
    assert dict(WAFER_EQUIVALENTS) == {
        "scfed:wafer-300mm-equivalent": Fraction(1),
        "scfed:wafer-200mm": Fraction(4, 9),
        "scfed:wafer-150mm": Fraction(1, 4),
    }
    assert len(UNITS) == 38


# ---- bad payloads, each named after the mutation ----

WBMD, WBCG = "WeekBasedMaterialDemand", "WeekBasedCapacityGroup"
STOCK, PPO, DI, DOS = "ItemStock", "PlannedProductionOutput", "DeliveryInformation", "DaysOfSupply"
DCN, STMD = "DemandAndCapacityNotification", "ShortTermMaterialDemand"
DEMAND = ("demandSeries", 0, "demands", 0)
ALLOCATED = ("positions", 0, "allocatedStocks", 0)
DELIVERY = ("positions", 0, "deliveries", 0)
CAPACITY = ("capacities", 0)
UNIT_REASON = "must be a Catena-X unit such as 'unit:piece', or a scfed wafer unit"

REFUSALS = {
    "unknown-unit": (
        WBMD, ("unitOfMeasure",), "unit:pieces",
        f"in.json: $.unitOfMeasure: field 'unitOfMeasure' {UNIT_REASON}, got 'unit:pieces'",
    ),
    "unknown-unit-in-quantity": (
        STOCK, (*ALLOCATED, "quantityOnAllocatedStock", "unit"), "unit:wafer",
        "in.json: $.positions[0].allocatedStocks[0].quantityOnAllocatedStock.unit: field 'unit'"
        f" {UNIT_REASON}, got 'unit:wafer'",
    ),
    "negative-quantity": (
        WBMD, (*DEMAND, "demand"), -5,
        "in.json: $.demandSeries[0].demands[0].demand: field 'demand' must not be negative,"
        " got -5",
    ),
    "negative-stock": (
        STOCK, (*ALLOCATED, "quantityOnAllocatedStock", "value"), -1.5,
        "in.json: $.positions[0].allocatedStocks[0].quantityOnAllocatedStock.value: field 'value'"
        " must not be negative, got -1.5",
    ),
    "negative-days-of-supply": (
        DOS, ("allocatedDaysOfSupply", 0, "amountOfAllocatedDaysOfSupply", 0, "daysOfSupply"), -1,
        "in.json: $.allocatedDaysOfSupply[0].amountOfAllocatedDaysOfSupply[0].daysOfSupply:"
        " field 'daysOfSupply' must not be negative, got -1",
    ),
    "no-such-day": (
        WBMD, (*DEMAND, "pointInTime"), "2023-02-30",
        "in.json: $.demandSeries[0].demands[0].pointInTime: field 'pointInTime' is not a day of"
        " the calendar, got '2023-02-30'",
    ),
    "date-not-iso": (
        STMD, (*DEMAND, "day"), "09.10.2023",
        "in.json: $.demandSeries[0].demands[0].day: field 'day' must be a date YYYY-MM-DD,"
        " got '09.10.2023'",
    ),
    "datetime-with-space": (
        STOCK, (*ALLOCATED, "lastUpdatedOnDateTime"), "2023-04-28 14:23:00",
        "in.json: $.positions[0].allocatedStocks[0].lastUpdatedOnDateTime: field"
        " 'lastUpdatedOnDateTime' must be a date and time YYYY-MM-DDThh:mm:ss[.f][zone],"
        " got '2023-04-28 14:23:00'",
    ),
    "datetime-hour-25": (
        PPO, ("positions", 0, "allocatedPlannedProductionOutputs", 0, "estimatedTimeOfCompletion"),
        "2023-04-29T25:00:00Z",
        "in.json: $.positions[0].allocatedPlannedProductionOutputs[0].estimatedTimeOfCompletion:"
        " field 'estimatedTimeOfCompletion' must be a date and time"
        " YYYY-MM-DDThh:mm:ss[.f][zone], got '2023-04-29T25:00:00Z'",
    ),
    "rfc3339-without-offset": (
        WBMD, ("changedAt",), "2023-11-05T08:15:30",
        "in.json: $.changedAt: field 'changedAt' must be an RFC 3339 date-time"
        " YYYY-MM-DDThh:mm:ss[.f](Z or +hh:mm or -hh:mm), got '2023-11-05T08:15:30'",
    ),
    "missing-required": (
        DI, (*DELIVERY, "transitLocations"), DELETE,
        "in.json: $.positions[0].deliveries[0].transitLocations: field 'transitLocations' is"
        " missing (required)",
    ),
    "missing-top-level": (
        WBMD, ("customer",), DELETE,
        "in.json: $.customer: field 'customer' is missing (required)",
    ),
    "string-for-number": (
        WBCG, (*CAPACITY, "actualCapacity"), "1000",
        "in.json: $.capacities[0].actualCapacity: field 'actualCapacity' must be a number,"
        " got '1000'",
    ),
    "bool-for-number": (
        DOS, ("allocatedDaysOfSupply", 0, "amountOfAllocatedDaysOfSupply", 0, "daysOfSupply"),
        True,
        "in.json: $.allocatedDaysOfSupply[0].amountOfAllocatedDaysOfSupply[0].daysOfSupply:"
        " field 'daysOfSupply' must be a number, got true",
    ),
    "number-for-bool": (
        STOCK, (*ALLOCATED, "isBlocked"), 0,
        "in.json: $.positions[0].allocatedStocks[0].isBlocked: field 'isBlocked' must be true or"
        " false, got 0",
    ),
    "nan": (
        WBMD, (*DEMAND, "demand"), float("nan"),
        "in.json: $.demandSeries[0].demands[0].demand: field 'demand' must be a finite number,"
        " got nan",
    ),
    "infinity": (
        WBMD, (*DEMAND, "demand"), float("inf"),
        "in.json: $.demandSeries[0].demands[0].demand: field 'demand' must be a finite number,"
        " got inf",
    ),
    "too-large": (
        WBMD, (*DEMAND, "demand"), 1e30,
        "in.json: $.demandSeries[0].demands[0].demand: field 'demand' must be at most"
        " 999999999999999999.999, got 1E+30",
    ),
    "too-precise": (
        STMD, (*DEMAND, "demand", "value"), 0.1234567891,
        "in.json: $.demandSeries[0].demands[0].demand.value: field 'value' has more than 9"
        " decimal places, got 0.1234567891",
    ),
    "fraction-for-integer": (
        WBCG, ("demandVolatilityParameters", "measurementInterval"), 4.5,
        "in.json: $.demandVolatilityParameters.measurementInterval: field 'measurementInterval'"
        " must be a whole number, got 4.5",
    ),
    "ratio-above-one": (
        WBCG,
        ("demandVolatilityParameters", "rollingHorizonAlertThresholds", 0,
         "relativeNegativeDeviation"),
        1.5,
        "in.json: $.demandVolatilityParameters.rollingHorizonAlertThresholds[0]"
        ".relativeNegativeDeviation: field 'relativeNegativeDeviation' must be at most 1,"
        " got 1.5",
    ),
    "unknown-property": (
        PPO, ("positions", 0, "plannedQuantity"), 1,
        "in.json: $.positions[0].plannedQuantity: field 'plannedQuantity' is not a property of"
        " this object (unknown: 'plannedQuantity')",
    ),
    "bad-bpnl": (
        WBMD, ("customer",), "BPNL8888888888X",
        "in.json: $.customer: field 'customer' must be a BPNL ('BPNL' and 12 letters or digits),"
        " got 'BPNL8888888888X'",
    ),
    "bad-bpns": (
        PPO, ("positions", 0, "allocatedPlannedProductionOutputs", 0, "productionSiteBpns"),
        "BPNX0123456789ZZ",
        "in.json: $.positions[0].allocatedPlannedProductionOutputs[0].productionSiteBpns: field"
        " 'productionSiteBpns' must be a BPNS ('BPNS' and 12 letters or digits),"
        " got 'BPNX0123456789ZZ'",
    ),
    "bad-bpna": (
        DOS, ("allocatedDaysOfSupply", 0, "stockLocationBPNA"), "BPNA12345",
        "in.json: $.allocatedDaysOfSupply[0].stockLocationBPNA: field 'stockLocationBPNA' must be"
        " a BPNA ('BPNA' and 12 letters or digits), got 'BPNA12345'",
    ),
    "bpns-with-trailing-newline": (
        DCN, ("affectedSitesSender", 0), "BPNS7588787849VQ\n",
        "in.json: $.affectedSitesSender[0]: field 'affectedSitesSender' must be a BPNS ('BPNS'"
        " and 12 letters or digits), got 'BPNS7588787849VQ\\n'",
    ),
    "bad-uuid": (
        DCN, ("notificationId",), "urn:uuid:not-a-uuid",
        "in.json: $.notificationId: field 'notificationId' must be a UUID, optionally"
        " urn:uuid:-prefixed, got 'urn:uuid:not-a-uuid'",
    ),
    "unknown-enumeration-value": (
        DCN, ("effect",), "demand-explosion",
        "in.json: $.effect: field 'effect' must be one of demand-reduction, demand-increase,"
        " capacity-reduction, capacity-increase, got 'demand-explosion'",
    ),
    "unknown-direction": (
        STOCK, ("direction",), "inbound",
        "in.json: $.direction: field 'direction' must be 'INBOUND' or 'OUTBOUND', got 'inbound'",
    ),
    "unknown-demand-category": (
        WBMD, ("demandSeries", 0, "demandCategory", "demandCategoryCode"), "9999",
        "in.json: $.demandSeries[0].demandCategory.demandCategoryCode: field"
        " 'demandCategoryCode' must be a demand category code, got '9999'",
    ),
    "null": (
        DCN, ("text",), None,
        "in.json: $.text: field 'text' must not be null (leave the property out instead)",
    ),
    "text-too-long": (
        DCN, ("text",), "x" * 4001,
        "in.json: $.text: field 'text' is 4001 characters long, at most 4000 allowed",
    ),
    "name-too-long": (
        WBCG, ("name",), "x" * 1001,
        "in.json: $.name: field 'name' is 1001 characters long, at most 1000 allowed",
    ),
    "lone-surrogate": (
        WBMD, ("materialDescriptionCustomer",), "Spark \ud800 Plug",
        "in.json: $.materialDescriptionCustomer: field 'materialDescriptionCustomer' is not valid"
        " Unicode text (it holds a lone surrogate)",
    ),
    "blank-material-number": (
        WBMD, ("materialNumberCustomer",), " ",
        "in.json: $.materialNumberCustomer: field 'materialNumberCustomer' must not be empty",
    ),
    "array-too-long": (
        STMD, ("demandSeries", 0, "demands"),
        [{"demand": {"value": 1, "unit": "unit:piece"}, "day": "2023-10-09"}] * 10_001,
        "in.json: $.demandSeries[0].demands: field 'demands' has 10001 items, at most 10000"
        " allowed",
    ),
    "three-transit-events": (
        DI, (*DELIVERY, "transitEvents"),
        [{"dateTimeOfEvent": f"2023-04-2{n}T14:23:00Z", "eventType": "actual-arrival"}
         for n in range(3)],
        "in.json: $.positions[0].deliveries[0].transitEvents: field 'transitEvents' has 3 items,"
        " at most 2 allowed",
    ),
    "no-transit-event": (
        DI, (*DELIVERY, "transitEvents"), [],
        "in.json: $.positions[0].deliveries[0].transitEvents: field 'transitEvents' has 0 items,"
        " at least 1 needed",
    ),
    "object-for-array": (
        STOCK, ("positions",), {},
        "in.json: $.positions: field 'positions' must be an array, got an object",
    ),
    "string-for-object": (
        DI, ("positions", 0), "position",
        "in.json: $.positions[0]: field 'positions' must be an object, got 'position'",
    ),
    "capacity-not-on-a-monday": (
        WBCG, (*CAPACITY, "pointInTime"), "2022-08-03",
        "in.json: $.capacities[0].pointInTime: field 'pointInTime' must be the Monday of an ISO"
        " week, got 2022-08-03 which is a Wednesday (that week's Monday is 2022-08-01)",
    ),
    "actual-above-maximum-capacity": (
        WBCG, (*CAPACITY, "actualCapacity"), 2001,
        "in.json: $.capacities[0].actualCapacity: field 'actualCapacity' must not exceed"
        " maximumCapacity 2000, got 2001",
    ),
    "unit-sent-though-omitted": (
        WBMD, ("unitOfMeasureIsOmitted",), True,
        "in.json: $.unitOfMeasure: field 'unitOfMeasure' must be left out when"
        " unitOfMeasureIsOmitted is true",
    ),
    "unit-missing-though-not-omitted": (
        WBCG, ("unitOfMeasure",), DELETE,
        "in.json: $.unitOfMeasure: field 'unitOfMeasure' is missing (required when"
        " unitOfMeasureIsOmitted is false)",
    ),
    "material-without-identifier": (
        DCN, ("materialsAffected", 0), {},
        "in.json: $.materialsAffected[0].materialNumberSupplier: field 'materialNumberSupplier'"
        " is missing: a material needs materialGlobalAssetId, materialNumberCustomer or"
        " materialNumberSupplier",
    ),
    "repeated-site": (
        WBCG, ("supplierLocations",), ["BPNS8888888888XX", "BPNS8888888888XX"],
        "in.json: $.supplierLocations[1]: field 'supplierLocations' repeats item 0 (items must"
        " be unique)",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("kind", "path", "value", "message"), REFUSALS.values(), ids=REFUSALS)
def test_bad_payload_is_refused_with_path_field_and_reason(
    kind: str, path: tuple[str | int, ...], value: object, message: str
) -> None:
    assert refusal(kind, mutated(kind, *path, value=value)) == message


def test_a_demand_twice_in_one_week_is_refused() -> None:
    payload = example(WBMD)
    demands = payload["demandSeries"][0]["demands"]
    demands.append({"demand": 5, "pointInTime": demands[0]["pointInTime"]})
    assert refusal(WBMD, payload) == (
        "in.json: $.demandSeries[0].demands[1]: field 'demands' repeats the pointInTime of"
        " item 0 (they must be unique)"
    )


def test_a_demand_series_twice_for_one_location_and_category_is_refused() -> None:
    payload = example(WBMD)
    series = copy.deepcopy(payload["demandSeries"][0])
    series["demands"][0]["pointInTime"] = "2023-10-16"
    payload["demandSeries"].append(series)
    assert refusal(WBMD, payload) == (
        "in.json: $.demandSeries[1]: field 'demandSeries' repeats the customerLocation and"
        " demandCategory.demandCategoryCode of item 0 (they must be unique)"
    )


def test_all_arrays_together_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_codec, "MAX_TOTAL_ITEMS", 2)
    payload = example(DI)
    assert refusal(DI, payload) == (
        "in.json: $.positions[0].deliveries[0].transitEvents: field 'transitEvents' brings the"
        " payload above 2 array items in all"
    )


def test_payload_that_is_not_an_object_is_refused() -> None:
    assert refusal(STOCK, [1]) == "in.json: $ must be an object, got an array"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ImportRowError, match=r"^in\.json: unknown aspect model 'Stock'; known: "):
        parse_payload("Stock", {}, source="in.json")


def test_to_json_refuses_an_extension_record() -> None:
    with pytest.raises(TypeError, match=r"^scfed\.v1\.OrderBook is not a Catena-X"):
        to_json(pb.OrderBook())


# ---- recognising payloads ----


def test_unrelated_object_is_not_recognised() -> None:
    with pytest.raises(ImportRowError) as caught:
        detect_kind({"orderId": "4711", "lines": []})
    assert str(caught.value) == (
        "$: not a Catena-X aspect model payload: its properties ('orderId', 'lines') match none"
        f" of {', '.join(KINDS)}"
    )


def test_a_near_miss_names_the_closest_model_and_what_is_wrong() -> None:
    payload = example(STOCK)
    payload["positons"] = payload.pop("positions")
    with pytest.raises(ImportRowError) as caught:
        detect_kind(payload)
    assert str(caught.value) == (
        "$: not a Catena-X aspect model payload: closest is ItemStock, which needs positions and"
        " does not allow 'positons'"
    )


def test_a_list_is_not_a_payload() -> None:
    with pytest.raises(ImportRowError, match=r"^\$: a Catena-X payload is a JSON object, not an"):
        detect_kind([example(STOCK)])


def test_models_with_the_same_top_level_are_told_apart_by_what_they_nest() -> None:
    production, delivery = example(PPO), example(DI)
    assert set(production) == set(delivery)
    assert (detect_kind(production), detect_kind(delivery)) == (PPO, DI)


def test_models_nothing_tells_apart_are_not_guessed() -> None:
    with pytest.raises(ImportRowError) as caught:
        detect_kind({"materialGlobalAssetId": ASSET, "positions": []})
    assert str(caught.value) == (
        "$: nothing in the payload tells apart PlannedProductionOutput and DeliveryInformation"
    )


# ---- facts ----


def fact(metric: str, item: str, week: date, quantity: str, unit: str = "unit:piece") -> RawFact:
    return RawFact(metric, item, week, Decimal(quantity), unit)


EXAMPLE_FACTS = {
    # Both DCM examples are flagged inactive: no facts (see the active variants below).
    WBMD: [],
    WBCG: [],
    # 2023-04-28 and 2023-04-29 fall in the ISO week that starts on Monday 2023-04-24.
    STOCK: [fact("stock_inbound", ASSET, date(2023, 4, 24), "20")],
    PPO: [fact("production_planned", ASSET, date(2023, 4, 24), "20")],
    DI: [fact("delivery", ASSET, date(2023, 4, 24), "20")],
    DOS: [fact("days_of_supply", ASSET, date(2024, 1, 1), "3.51", "unit:day")],
    DCN: [],
    STMD: [fact("demand_short_term", ASSET, date(2023, 10, 9), "20")],
}


@pytest.mark.parametrize("kind", KINDS)
def test_example_facts(kind: str) -> None:
    assert facts(parse_payload(kind, example(kind), source="in.json")) == EXAMPLE_FACTS[kind]


def test_active_material_demand_gives_demand_by_supplier_material_number() -> None:
    payload = mutated(WBMD, "materialDemandIsInactive", value=False)
    record = parse_payload(WBMD, payload, source="in.json")
    assert facts(record) == [fact("demand", "MNR-8101-ID146955.001", date(2023, 10, 9), "1000")]


def test_material_demand_falls_back_to_the_customer_number_and_keeps_an_omitted_unit() -> None:
    payload = mutated(WBMD, "materialDemandIsInactive", value=False)
    del payload["materialNumberSupplier"], payload["unitOfMeasure"]
    payload["unitOfMeasureIsOmitted"] = True
    payload["demandSeries"][0]["demands"][0]["pointInTime"] = "2023-10-12"  # a Thursday
    record = parse_payload(WBMD, payload, source="in.json")
    assert facts(record) == [fact("demand", "MNR-7307-AU340474.002", date(2023, 10, 9), "1000", "")]


def test_active_capacity_group_gives_actual_and_maximum_capacity() -> None:
    payload = mutated(WBCG, "capacityGroupIsInactive", value=False)
    record = parse_payload(WBCG, payload, source="in.json")
    assert facts(record) == [
        fact("capacity_actual", GROUP, date(2022, 8, 1), "1000"),
        fact("capacity_max", GROUP, date(2022, 8, 1), "2000"),
    ]


def test_stocks_of_one_week_add_up_and_direction_picks_the_metric() -> None:
    payload = mutated(STOCK, "direction", value="OUTBOUND")
    stocks = payload["positions"][0]["allocatedStocks"]
    stocks.append({**stocks[0], "isBlocked": True, "quantityOnAllocatedStock": {
        "value": 2.5, "unit": "unit:piece"}})  # fmt: skip
    stocks.append({**stocks[0], "stockLocationBPNS": "BPNS0000000000AA",
                   "lastUpdatedOnDateTime": "2023-05-01T08:00:00"})  # fmt: skip
    record = parse_payload(STOCK, payload, source="in.json")
    assert facts(record) == [
        fact("stock_outbound", ASSET, date(2023, 4, 24), "22.5"),
        fact("stock_outbound", ASSET, date(2023, 5, 1), "20"),
    ]


def test_delivery_counts_in_the_week_of_its_latest_transit_event() -> None:
    payload = example(DI)
    payload["positions"][0]["deliveries"][0]["transitEvents"] = [
        {"dateTimeOfEvent": "2023-05-02T10:00:00+02:00", "eventType": "estimated-arrival"},
        {"dateTimeOfEvent": "2023-04-29T14:23:00+14:00", "eventType": "actual-departure"},
    ]
    record = parse_payload(DI, payload, source="in.json")
    assert facts(record) == [fact("delivery", ASSET, date(2023, 5, 1), "20")]


def test_a_day_ending_at_24_00_counts_as_the_next_day() -> None:
    path = ("positions", 0, "allocatedPlannedProductionOutputs", 0, "estimatedTimeOfCompletion")
    payload = mutated(PPO, *path, value="2023-04-30T24:00:00Z")  # Sunday's end is Monday
    record = parse_payload(PPO, payload, source="in.json")
    assert facts(record) == [fact("production_planned", ASSET, date(2023, 5, 1), "20")]


def test_days_of_supply_of_one_week_give_their_smallest() -> None:
    payload = example(DOS)
    payload["allocatedDaysOfSupply"][0]["amountOfAllocatedDaysOfSupply"] = [
        {"date": "2024-01-01T00:00:00Z", "daysOfSupply": 3.51},
        {"date": "2024-01-03T00:00:00Z", "daysOfSupply": 2},
        {"date": "2024-01-08T00:00:00Z", "daysOfSupply": 6},
    ]
    record = parse_payload(DOS, payload, source="in.json")
    assert facts(record) == [
        fact("days_of_supply", ASSET, date(2024, 1, 1), "2", "unit:day"),
        fact("days_of_supply", ASSET, date(2024, 1, 8), "6", "unit:day"),
    ]


def test_facts_refuse_a_message_that_is_not_a_record() -> None:
    with pytest.raises(TypeError, match="is not a scfed record"):
        facts(pb.ItemQuantity())


@given(st.dates())
def test_iso_monday_is_the_monday_on_or_before(day: date) -> None:
    monday = iso_monday(day)
    assert monday.weekday() == 0
    assert timedelta(0) <= day - monday < timedelta(days=7)
    assert monday.isocalendar()[:2] == day.isocalendar()[:2]


@given(
    st.dictionaries(
        st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
        st.decimals(min_value=0, max_value=10**12, places=3, allow_nan=False),
        max_size=20,
    )
)
def test_short_term_demands_add_up_per_week(demands: dict[date, Decimal]) -> None:
    payload = example(STMD)
    payload["demandSeries"][0]["demands"] = [
        {"demand": {"value": float(q), "unit": "unit:piece"}, "day": d.isoformat()}
        for d, q in demands.items()
    ]
    expected: dict[date, Decimal] = {}
    for day, quantity in demands.items():
        week = iso_monday(day)
        expected[week] = expected.get(week, Decimal(0)) + quantity
    record = parse_payload(STMD, payload, source="in.json")
    assert {f.week: f.quantity for f in facts(record)} == expected


# ---- numbers: exact, and back equal ----


@given(st.floats(min_value=0, max_value=1e18))
def test_any_float_comes_back_equal_or_is_refused_for_its_precision(value: float) -> None:
    payload = mutated(WBMD, *DEMAND, "demand", value=value)
    exact = Decimal(repr(value))  # what the file said: the shortest text that reads as value
    places = exact.normalize().as_tuple().exponent
    assert isinstance(places, int)
    if exact > Decimal("999999999999999999.999") or places < -9:
        with pytest.raises(ImportRowError, match=r"decimal places|must be at most"):
            parse_payload(WBMD, payload, source="in.json")
        return
    back: Any = to_json(parse_payload(WBMD, payload, source="in.json"))
    assert back == payload
    assert type(back["demandSeries"][0]["demands"][0]["demand"]) in {int, float}


@given(st.integers(min_value=0, max_value=2**53))
def test_any_integer_up_to_2_53_comes_back_equal(value: int) -> None:
    payload = mutated(WBMD, *DEMAND, "demand", value=value)
    assert to_json(parse_payload(WBMD, payload, source="in.json")) == payload


@pytest.mark.parametrize("value", [2**53 + 1, 10**17, 10**17 + 1, 999_999_999_999_999_999])
def test_large_integers_come_back_equal(value: int) -> None:
    payload = mutated(WBMD, *DEMAND, "demand", value=value)
    assert to_json(parse_payload(WBMD, payload, source="in.json")) == payload


@given(st.decimals(min_value=-(10**17), max_value=10**17, places=9, allow_nan=False))
def test_decimals_are_stored_exactly(value: Decimal) -> None:
    payload = mutated(WBCG, *CAPACITY, "deltaProductionResult", value=value)
    record = parse_payload(WBCG, payload, source="in.json")
    assert isinstance(record, pb.WeekBasedCapacityGroup)
    stored = record.capacities.items[0].delta_production_result
    assert Decimal(stored) == value
    assert "E" not in stored
    assert "." not in stored or not stored.endswith(("0", "."))


# ---- extensions from CSV rows ----

ROWS: dict[str, dict[str, str]] = {
    "order_book": {
        "item": "SoC-7", "week": "2024-01-01", "bookings": "120", "billings": "100.50",
        "backlog": "1e3", "unit": "unit:piece",
    },
    "quoted_lead_time": {"item": "SoC-7", "week": "2024-01-01", "lead_time_weeks": "26"},
    "fab_utilisation": {
        "item": "fab-2", "week": "2024-01-08", "wafer_starts_capacity": "5000",
        "wafer_starts_actual": " 4200 ", "unit": "scfed:wafer-200mm",
    },
    "work_in_progress": {
        "item": "SoC-7", "week": "2024-01-01", "quantity": "800",
        "unit": "scfed:wafer-300mm-equivalent",
    },
    "finished_goods": {
        "item": "SoC-7", "week": "2024-01-01", "quantity": "0", "unit": "unit:piece",
    },
}  # fmt: skip
ROW_FACTS = {
    "order_book": [
        fact("backlog", "SoC-7", date(2024, 1, 1), "1000"),
        fact("billings", "SoC-7", date(2024, 1, 1), "100.5"),
        fact("bookings", "SoC-7", date(2024, 1, 1), "120"),
    ],
    "quoted_lead_time": [fact("lead_time_weeks", "SoC-7", date(2024, 1, 1), "26", "unit:week")],
    "fab_utilisation": [
        fact("wafer_starts_actual", "fab-2", date(2024, 1, 8), "4200", "scfed:wafer-200mm"),
        fact("wafer_starts_capacity", "fab-2", date(2024, 1, 8), "5000", "scfed:wafer-200mm"),
    ],
    "work_in_progress": [
        fact("stock_wip", "SoC-7", date(2024, 1, 1), "800", "scfed:wafer-300mm-equivalent")
    ],
    "finished_goods": [fact("stock_finished", "SoC-7", date(2024, 1, 1), "0")],
}


def test_every_extension_kind_has_a_row() -> None:
    assert tuple(ROWS) == EXTENSION_KINDS


@pytest.mark.parametrize("kind", EXTENSION_KINDS)
def test_good_row_gives_its_record_and_facts(kind: str) -> None:
    record = parse_extension(kind, ROWS[kind], source="book.csv", line=2)
    assert [fd.name for fd in record.DESCRIPTOR.fields] == list(ROWS[kind])
    assert facts(record) == ROW_FACTS[kind]


def test_row_numbers_are_stored_as_canonical_decimal_text() -> None:
    record = parse_extension("order_book", ROWS["order_book"], source="book.csv", line=2)
    assert record == pb.OrderBook(
        item="SoC-7", week="2024-01-01", bookings="120", billings="100.5", backlog="1000",
        unit="unit:piece",
    )  # fmt: skip


def row_refusal(kind: str, **changes: str | None) -> str:
    fields: dict[Any, Any] = {**ROWS[kind], **changes}
    for name in [name for name, value in changes.items() if value is None]:
        del fields[name]
    with pytest.raises(ImportRowError) as caught:
        parse_extension(kind, fields, source="book.csv", line=7)
    return str(caught.value)


ROW_REFUSALS = {
    "unknown-unit": (
        "order_book", {"unit": "unit:wafers"},
        "book.csv, line 7: field 'unit' must be a Catena-X unit such as 'unit:piece', or a scfed"
        " wafer unit, got 'unit:wafers'",
    ),
    "negative": (
        "order_book", {"backlog": "-3"},
        "book.csv, line 7: field 'backlog' must not be negative, got -3",
    ),
    "week-not-a-monday": (
        "quoted_lead_time", {"week": "2024-01-03"},
        "book.csv, line 7: field 'week' must be the Monday of an ISO week, got 2024-01-03 which"
        " is a Wednesday (that week's Monday is 2024-01-01)",
    ),
    "week-not-a-date": (
        "finished_goods", {"week": "2024-W01"},
        "book.csv, line 7: field 'week' must be a date YYYY-MM-DD, got '2024-W01'",
    ),
    "non-numeric": (
        "work_in_progress", {"quantity": "12,5"},
        "book.csv, line 7: field 'quantity' must be a number such as 12 or 3.5, got '12,5'",
    ),
    "not-a-number-at-all": (
        "quoted_lead_time", {"lead_time_weeks": "NaN"},
        "book.csv, line 7: field 'lead_time_weeks' must be a number such as 12 or 3.5,"
        " got 'NaN'",
    ),
    "too-precise": (
        "finished_goods", {"quantity": "0.0000000001"},
        "book.csv, line 7: field 'quantity' has more than 9 decimal places, got 1E-10",
    ),
    "empty": (
        "order_book", {"item": "  "},
        "book.csv, line 7: field 'item' is empty",
    ),
    "not-a-wafer-unit": (
        "fab_utilisation", {"unit": "unit:piece"},
        "book.csv, line 7: field 'unit' must be a wafer unit: scfed:wafer-300mm-equivalent,"
        " scfed:wafer-200mm, scfed:wafer-150mm, got 'unit:piece'",
    ),
    "missing-column": (
        "order_book", {"billings": None},
        "book.csv, line 7: field 'billings' is missing (required)",
    ),
    "unknown-column": (
        "finished_goods", {"site": "Dresden"},
        "book.csv, line 7: field 'site' is not a column of this kind (columns: item, week,"
        " quantity, unit)",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("kind", "changes", "message"), ROW_REFUSALS.values(), ids=ROW_REFUSALS)
def test_bad_row_is_refused_with_file_line_field_and_reason(
    kind: str, changes: dict[str, str | None], message: str
) -> None:
    assert row_refusal(kind, **changes) == message


def test_short_and_long_csv_rows_are_refused() -> None:
    short: dict[Any, Any] = {**ROWS["finished_goods"], "unit": None}  # csv.DictReader's restval
    with pytest.raises(ImportRowError, match=r"^b\.csv, line 3: field 'unit' is missing"):
        parse_extension("finished_goods", short, source="b.csv", line=3)
    long: dict[Any, Any] = {**ROWS["finished_goods"], None: ["extra"]}  # and its restkey
    with pytest.raises(ImportRowError, match="more values than the header has columns"):
        parse_extension("finished_goods", long, source="b.csv", line=3)


def test_unknown_extension_kind_is_refused() -> None:
    with pytest.raises(ImportRowError, match=r"^b\.csv, line 1: unknown record kind 'orders'"):
        parse_extension("orders", {}, source="b.csv", line=1)


@given(st.decimals(min_value=0, max_value=10**17, places=9, allow_nan=False))
def test_row_quantities_are_stored_exactly(value: Decimal) -> None:
    row = {**ROWS["finished_goods"], "quantity": str(value)}
    record = parse_extension("finished_goods", row, source="b.csv", line=2)
    assert facts(record)[0].quantity == value
