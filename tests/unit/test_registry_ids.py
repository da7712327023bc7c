from __future__ import annotations

import re

from flows.registry_ids import find_registry_ids, registry_id_patterns
from flows.settings import REPO_DIR


def test_recognises_every_registry_form():
    text = (
        "Registered at ClinicalTrials.gov (NCT04786262), ChiCTR-TRC-12001933 and ChiCTR2000029308, "
        "IRCT2016070428786N1, IRCT20180619040147N5, CTRI/2019/05/019103, ISRCTN12345678, "
        "EudraCT 2005-004523-19, EU CT 2022-500045-25-00, jRCT2031210001, ACTRN12614000179628, "
        "DRKS00012345."
    )
    found = dict((value, name) for name, value in find_registry_ids(text))
    assert found == {
        "NCT04786262": "ClinicalTrials.gov",
        "ChiCTR-TRC-12001933": "ChiCTR",
        "ChiCTR2000029308": "ChiCTR",
        "IRCT2016070428786N1": "IRCT",
        "IRCT20180619040147N5": "IRCT",
        "CTRI/2019/05/019103": "CTRI",
        "ISRCTN12345678": "ISRCTN",
        "2005-004523-19": "EudraCT",
        "2022-500045-25-00": "EU CT",
        "jRCT2031210001": "jRCT",
        "ACTRN12614000179628": "ANZCTR",
        "DRKS00012345": "DRKS",
    }


def test_near_misses_are_not_ids():
    assert find_registry_ids("NCT123 and ISRCTN1234 and 2005-12-19 and phone 2020-123456-78") == []


def test_dbt_macro_patterns_are_the_seed():
    macro = (REPO_DIR / "dbt_project/macros/registry_ids.sql").read_text()
    pairs = re.findall(r"\('([^']+)', '([^']+)'\)", macro)
    in_macro = [(name, pattern.replace("\\\\", "\\")) for name, pattern in pairs]
    assert in_macro == [(name, p.pattern) for name, p in registry_id_patterns()]
