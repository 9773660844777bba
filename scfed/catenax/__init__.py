"""Catena-X aspect models and scfed's semiconductor extensions as node-local records. Pure.

Takes parsed JSON values and CSV fields, never files: ``detect_kind`` tells which aspect model
a payload is, ``parse_payload`` checks it completely against that model's JSON schema (and the
rules its descriptions state) and builds the record message of ``scfed.v1`` records.proto,
``to_json`` gives the payload back, ``parse_extension`` reads one CSV row of an extension,
and ``facts`` lists the weekly quantities a record contributes. Every problem with the input
is an ``ImportRowError`` naming the file, the JSON path or CSV line, the field and the reason.

Aspect models: WeekBasedMaterialDemand 3.0.1, WeekBasedCapacityGroup 3.0.1, ItemStock 2.0.0,
PlannedProductionOutput 2.0.0, DeliveryInformation 2.0.0, DaysOfSupply 2.0.0,
DemandAndCapacityNotification 3.0.0, ShortTermMaterialDemand 1.0.0. Numbers are kept as exact
decimal text with at most 9 decimal places and below 10^18 (the node's fixed point); a float
counts as the shortest decimal that reads back as it, so ``3.51`` is 3.51.

Facts. ``week`` is the Monday of the ISO week of the date named; a date-time counts by its
calendar day where it was written. Quantities of one (metric, item, week, unit) are added up,
except days of supply, which are levels: the smallest counts.

=============================  ====================================  =======================
record                         metric, quantity, date                item; unit
=============================  ====================================  =======================
WeekBasedMaterialDemand        ``demand``: each demand at its        materialNumberSupplier
                               pointInTime                           if given, else
                                                                     materialNumberCustomer;
                                                                     unitOfMeasure ("" if
                                                                     omitted by agreement)
WeekBasedCapacityGroup         ``capacity_actual`` (actualCapacity)  capacityGroupId;
                               and ``capacity_max``                  unitOfMeasure
                               (maximumCapacity) at pointInTime
ItemStock                      ``stock_inbound`` or                  materialGlobalAssetId;
                               ``stock_outbound`` by direction:      the quantity's unit
                               quantityOnAllocatedStock (blocked
                               stock included) at
                               lastUpdatedOnDateTime
PlannedProductionOutput        ``production_planned``:               materialGlobalAssetId;
                               plannedProductionQuantity at          the quantity's unit
                               estimatedTimeOfCompletion
DeliveryInformation            ``delivery``: deliveryQuantity at     materialGlobalAssetId;
                               the latest transit event              the quantity's unit
DaysOfSupply                   ``days_of_supply``: daysOfSupply at   materialGlobalAssetId;
                               its date, smallest of the week over   ``unit:day``
                               dates and stock locations
ShortTermMaterialDemand        ``demand_short_term``: each demand    materialGlobalAssetId;
                               at its day                            the demand's unit
DemandAndCapacityNotification  none: an event, not a quantity
OrderBook                      ``bookings``, ``billings``,           item; unit
                               ``backlog``
QuotedLeadTime                 ``lead_time_weeks``                   item; ``unit:week``
FabUtilisation                 ``wafer_starts_capacity``,            item; a wafer unit
                               ``wafer_starts_actual``
WorkInProgress                 ``stock_wip``: quantity               item; unit
FinishedGoods                  ``stock_finished``: quantity          item; unit
=============================  ====================================  =======================

A material demand or capacity group flagged inactive (materialDemandIsInactive,
capacityGroupIsInactive) gives no facts: Demand and Capacity Management leaves inactive ones
out of matching demand against capacity, and counting them would add figures nobody
maintains.
"""

from __future__ import annotations

from scfed.catenax._codec import KINDS, detect_kind, parse_payload, to_json
from scfed.catenax._extensions import EXTENSION_KINDS, parse_extension
from scfed.catenax._facts import RawFact, facts, iso_monday
from scfed.catenax._scalars import UNITS, WAFER_EQUIVALENTS

__all__ = [
    "EXTENSION_KINDS",
    "KINDS",
    "UNITS",
    "WAFER_EQUIVALENTS",
    "RawFact",
    "detect_kind",
    "facts",
    "iso_monday",
    "parse_extension",
    "parse_payload",
    "to_json",
]
