#!/usr/bin/env python3
"""Write vocabx's small synthetic sample corpora: medical notes, contracts and general English.

Every document is assembled here from sentence templates and term lists written for this project, with
slots filled by a seeded ``random.Random``; no text is copied from any other corpus. The output is
three JSON Lines files (one ``{"id": ..., "text": ...}`` object per line) next to this script:

    medical/clinical_notes.jsonl   ~300 clinical notes (discharge summaries, consults, radiology, ...)
    legal/contracts.jsonl          ~300 contracts (distribution, licence, NDA, employment, lease, ...)
    general/general.jsonl          ~100 plain everyday English paragraphs, as a reference corpus

The corpora exist so that vocabx's commands, tests and examples have domain text that ships with the
repository. They are shaped for vocabulary analysis: terms follow a Zipf-like frequency (a few very
frequent, a long tail of occasional ones), frequent terms recur across many documents, and domain
morphemes (hepat-, nephr-, -itis, -ectomy, sub-/licens-) recur across words.

What it leaves out: clinical or legal correctness (a note's numbers are plausible, not consistent
physiology; a contract is not advice), real people or companies (all names are made up), and scale
(real corpora live outside the repository; see README.md).

Output is byte-identical on every run and machine: each document draws from its own
``random.Random`` seeded by a string (string seeds are hashed with SHA-512, not Python's salted
``hash``), iteration follows list order, and nothing reads the clock or the environment.

    python corpora/generate.py            # (re)write the files
    python corpora/generate.py --check    # exit 1 if the files on disk differ from a fresh run
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import re
import sys
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent

# Bump SEED_VERSION to reshuffle every corpus at once; document i of a corpus always comes from
# the seed "<SEED_VERSION>/<corpus>/<i>", so one document can be regenerated on its own.
SEED_VERSION = "vocabx-corpora-v1"


# --------------------------------------------------------------------------------------------------
# Template engine
# --------------------------------------------------------------------------------------------------

class Zipf:
    """Pick items with weight 1 / rank**s, so the list order is the frequency order.

    ``Zipf(["a", "b", "c"])`` picks "a" about 55% of the time, "b" 27%, "c" 18%.
    """

    def __init__(self, items: list, s: float = 1.0):
        if not items:
            raise ValueError("Zipf needs at least one item")
        self.items = list(items)
        self.cum_weights = list(accumulate(1.0 / (rank ** s) for rank in range(1, len(items) + 1)))

    def __call__(self, rng: random.Random):
        return rng.choices(self.items, cum_weights=self.cum_weights)[0]

    def sample(self, rng: random.Random, k: int, exclude: tuple = ()) -> list:
        """Up to k distinct items in Zipf order of preference, skipping those in ``exclude``."""
        k = min(k, len([item for item in self.items if item not in exclude]))
        chosen: list = []
        while len(chosen) < k:
            item = self(rng)
            if item not in chosen and item not in exclude:
                chosen.append(item)
        return chosen


def uniform(items: list) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(items)


# A slot is {name}, {Name} (the value with its first letter capitalised), or an inline draw:
# {n:LO-HI} an integer, {f:LO-HI} a decimal with as many places as LO, {pick:a|b|c} one alternative.
SLOT = re.compile(r"\{(\w+)(?::([^{}]*))?\}")


def fill(template: str, ctx: dict, rng: random.Random) -> str:
    """Replace every slot in ``template``; values may hold slots of their own.

    ``fill("{He} is {n:60-60}.", {"he": "she"}, rng) -> "She is 60."``
    """

    def replace(match: re.Match) -> str:
        name, arg = match.group(1), match.group(2)
        if arg is not None:
            value = inline_draw(name, arg, rng)
        else:
            key = name if name in ctx else name[0].lower() + name[1:]
            if key not in ctx:
                raise KeyError(f"template slot {{{name}}} has no value in: {template!r}")
            value = ctx[key]
            value = value(rng) if callable(value) else value
            if key != name:
                value = capitalize(value)
        return fill(value, ctx, rng) if "{" in value else value

    return SLOT.sub(replace, template)


def inline_draw(kind: str, arg: str, rng: random.Random) -> str:
    if kind == "pick":
        return rng.choice(arg.split("|"))
    low, high = arg.split("-")
    if kind == "n":
        return str(rng.randint(int(low), int(high)))
    if kind == "f":
        places = len(low.partition(".")[2])
        return f"{rng.uniform(float(low), float(high)):.{places}f}"
    raise ValueError(f"unknown inline slot {{{kind}:{arg}}}")


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def join_list(items: list[str]) -> str:
    """``["a", "b", "c"] -> "a, b, and c"``; real notes and contracts use the serial comma."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def word_count(text: str) -> int:
    return len(text.split())


def random_date(rng: random.Random, first_year: int = 2019, last_year: int = 2024) -> datetime.date:
    start = datetime.date(first_year, 1, 1).toordinal()
    end = datetime.date(last_year, 12, 31).toordinal()
    return datetime.date.fromordinal(rng.randint(start, end))


def make_documents(
    corpus: str,
    count: int,
    build: Callable[[random.Random], str],
    min_words: int,
    max_words: int,
) -> list[dict]:
    """Build ``count`` documents, redrawing (from the same seeded stream) any outside the word range."""
    docs = []
    for index in range(count):
        rng = random.Random(f"{SEED_VERSION}/{corpus}/{index}")
        for _ in range(200):
            text = build(rng)
            if min_words <= word_count(text) <= max_words:
                break
        else:
            raise RuntimeError(f"{corpus} document {index}: no draw within {min_words}-{max_words} words")
        docs.append({"id": f"{corpus}-{index:04d}", "text": text})
    return docs


# Made-up surnames: syllables glued together so that no list of real people is involved.
SURNAME_HEADS = ["Ash", "Bram", "Cal", "Dun", "Ell", "Fen", "Gar", "Hal", "Ivel", "Jar", "Kell", "Lind",
                 "Mor", "Nor", "Orm", "Pell", "Quen", "Rad", "Sel", "Tarl", "Ulv", "Vard", "Wes", "Yar"]
SURNAME_TAILS = ["bury", "combe", "dale", "er", "ford", "gate", "holt", "ington", "ley", "mont", "ner",
                 "ridge", "sen", "stow", "ton", "vik", "well", "wick", "by", "croft"]
GIVEN_NAMES = ["Avery", "Jordan", "Morgan", "Riley", "Casey", "Quinn", "Rowan", "Elliot", "Harper",
               "Parker", "Reese", "Sasha", "Taylor", "Devon", "Blair", "Emerson", "Hayden", "Logan"]


def surname(rng: random.Random) -> str:
    return rng.choice(SURNAME_HEADS) + rng.choice(SURNAME_TAILS)


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(GIVEN_NAMES)} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {surname(rng)}"


# --------------------------------------------------------------------------------------------------
# Medical: terms
# --------------------------------------------------------------------------------------------------

# name -> (doses, unit, frequencies). Route is added when formatting (almost all oral).
MEDS = {
    "metoprolol succinate": (["25", "50", "100"], "mg", ["daily"]),
    "metoprolol tartrate": (["12.5", "25", "50"], "mg", ["twice daily", "b.i.d."]),
    "carvedilol": (["3.125", "6.25", "12.5", "25"], "mg", ["twice daily"]),
    "atorvastatin": (["10", "20", "40", "80"], "mg", ["nightly", "daily", "q.h.s."]),
    "rosuvastatin": (["5", "10", "20"], "mg", ["daily"]),
    "simvastatin": (["20", "40"], "mg", ["nightly"]),
    "ezetimibe": (["10"], "mg", ["daily"]),
    "lisinopril": (["5", "10", "20", "40"], "mg", ["daily"]),
    "losartan": (["25", "50", "100"], "mg", ["daily"]),
    "amlodipine": (["2.5", "5", "10"], "mg", ["daily"]),
    "hydrochlorothiazide": (["12.5", "25"], "mg", ["daily"]),
    "chlorthalidone": (["12.5", "25"], "mg", ["daily"]),
    "furosemide": (["20", "40", "80"], "mg", ["daily", "twice daily"]),
    "spironolactone": (["12.5", "25", "50"], "mg", ["daily"]),
    "hydralazine": (["25", "50"], "mg", ["three times daily"]),
    "isosorbide mononitrate": (["30", "60"], "mg", ["daily"]),
    "diltiazem": (["120", "180", "240"], "mg", ["daily"]),
    "digoxin": (["0.125"], "mg", ["daily"]),
    "amiodarone": (["200"], "mg", ["daily"]),
    "apixaban": (["2.5", "5"], "mg", ["twice daily"]),
    "rivaroxaban": (["15", "20"], "mg", ["daily with the evening meal"]),
    "warfarin": (["2.5", "5", "7.5"], "mg", ["daily, dose per INR"]),
    "aspirin": (["81"], "mg", ["daily"]),
    "clopidogrel": (["75"], "mg", ["daily"]),
    "ticagrelor": (["90"], "mg", ["twice daily"]),
    "metformin": (["500", "850", "1000"], "mg", ["twice daily with meals"]),
    "empagliflozin": (["10", "25"], "mg", ["daily"]),
    "dapagliflozin": (["10"], "mg", ["daily"]),
    "sitagliptin": (["50", "100"], "mg", ["daily"]),
    "glipizide": (["5", "10"], "mg", ["daily before breakfast"]),
    "insulin glargine": (["12", "18", "24", "30"], "units", ["at bedtime"]),
    "semaglutide": (["0.5", "1"], "mg", ["subcutaneously once weekly"]),
    "levothyroxine": (["50", "75", "88", "100", "125"], "mcg", ["daily on an empty stomach"]),
    "methimazole": (["5", "10"], "mg", ["daily"]),
    "pantoprazole": (["40"], "mg", ["daily", "twice daily"]),
    "omeprazole": (["20", "40"], "mg", ["daily before breakfast"]),
    "famotidine": (["20"], "mg", ["twice daily"]),
    "albuterol inhaler": (["90"], "mcg", ["2 puffs every 4 hours as needed"]),
    "tiotropium": (["18"], "mcg", ["inhaled daily"]),
    "fluticasone-salmeterol": (["250/50"], "mcg", ["1 inhalation twice daily"]),
    "montelukast": (["10"], "mg", ["nightly"]),
    "methotrexate": (["10", "15", "20"], "mg", ["once weekly"]),
    "folic acid": (["1"], "mg", ["daily"]),
    "hydroxychloroquine": (["200"], "mg", ["twice daily"]),
    "prednisone": (["5", "10", "40"], "mg", ["daily"]),
    "allopurinol": (["100", "300"], "mg", ["daily"]),
    "colchicine": (["0.6"], "mg", ["daily"]),
    "alendronate": (["70"], "mg", ["once weekly"]),
    "cholecalciferol": (["1000", "2000"], "units", ["daily"]),
    "calcium carbonate": (["500"], "mg", ["twice daily"]),
    "gabapentin": (["100", "300"], "mg", ["three times daily"]),
    "sertraline": (["50", "100"], "mg", ["daily"]),
    "escitalopram": (["10", "20"], "mg", ["daily"]),
    "bupropion": (["150"], "mg", ["daily"]),
    "buspirone": (["10"], "mg", ["twice daily"]),
    "trazodone": (["50"], "mg", ["at bedtime as needed for sleep"]),
    "tamsulosin": (["0.4"], "mg", ["daily"]),
    "finasteride": (["5"], "mg", ["daily"]),
    "donepezil": (["5", "10"], "mg", ["nightly"]),
    "carbidopa-levodopa": (["25/100"], "mg", ["three times daily"]),
    "levetiracetam": (["500", "750"], "mg", ["twice daily"]),
    "sumatriptan": (["50"], "mg", ["as needed for migraine"]),
    "ferrous sulfate": (["325"], "mg", ["daily"]),
    "potassium chloride": (["20"], "mEq", ["daily"]),
    "lactulose": (["20"], "g", ["three times daily, titrated to 2-3 soft stools"]),
    "rifaximin": (["550"], "mg", ["twice daily"]),
    "acetaminophen": (["500", "650"], "mg", ["every 6 hours as needed"]),
}

# Ordered from most to least common, so Zipf() gives the realistic skew; each names its usual drugs.
COMORBIDITIES = [
    ("hypertension", ["lisinopril", "amlodipine", "losartan", "hydrochlorothiazide", "chlorthalidone"]),
    ("hyperlipidemia", ["atorvastatin", "rosuvastatin", "simvastatin"]),
    ("type 2 diabetes mellitus", ["metformin", "empagliflozin", "insulin glargine", "sitagliptin",
                                  "glipizide", "semaglutide"]),
    ("coronary artery disease", ["aspirin", "atorvastatin", "metoprolol succinate", "clopidogrel"]),
    ("gastroesophageal reflux disease", ["pantoprazole", "omeprazole", "famotidine"]),
    ("hypothyroidism", ["levothyroxine"]),
    ("atrial fibrillation", ["apixaban", "metoprolol succinate", "diltiazem", "rivaroxaban", "warfarin"]),
    ("chronic kidney disease stage 3", []),
    ("obesity", []),
    ("chronic obstructive pulmonary disease", ["tiotropium", "albuterol inhaler", "fluticasone-salmeterol"]),
    ("major depressive disorder", ["sertraline", "escitalopram", "bupropion"]),
    ("osteoarthritis", ["acetaminophen"]),
    ("heart failure with reduced ejection fraction", ["carvedilol", "furosemide", "spironolactone",
                                                      "dapagliflozin"]),
    ("obstructive sleep apnea on CPAP", []),
    ("generalized anxiety disorder", ["buspirone", "sertraline"]),
    ("benign prostatic hyperplasia", ["tamsulosin", "finasteride"]),
    ("iron deficiency anemia", ["ferrous sulfate"]),
    ("asthma", ["albuterol inhaler", "montelukast", "fluticasone-salmeterol"]),
    ("peripheral neuropathy", ["gabapentin"]),
    ("chronic thrombocytopenia", []),
    ("osteoporosis", ["alendronate", "cholecalciferol", "calcium carbonate"]),
    ("gout", ["allopurinol", "colchicine"]),
    ("rheumatoid arthritis", ["methotrexate", "folic acid", "hydroxychloroquine"]),
    ("hypertriglyceridemia", ["atorvastatin"]),
    ("remote nephrolithiasis", []),
    ("prior cerebrovascular accident", ["aspirin", "clopidogrel", "atorvastatin"]),
    ("migraine", ["sumatriptan"]),
    ("diabetic nephropathy", ["losartan"]),
    ("diabetic retinopathy", []),
    ("hepatic steatosis", []),
    ("history of deep vein thrombosis", ["rivaroxaban", "apixaban"]),
    ("seizure disorder", ["levetiracetam"]),
    ("dementia", ["donepezil"]),
    ("Parkinson disease", ["carbidopa-levodopa"]),
    ("hyperthyroidism", ["methimazole"]),
    ("insomnia", ["trazodone"]),
    ("peripheral arterial disease", ["aspirin", "atorvastatin"]),
    ("polymyalgia rheumatica", ["prednisone"]),
    ("ischemic cardiomyopathy", ["carvedilol", "furosemide"]),
    ("hyperparathyroidism", []),
    ("chronic pancreatitis", []),
    ("sarcoidosis", []),
    ("ulcerative colitis", []),
    ("bronchiectasis", ["albuterol inhaler"]),
    ("systemic lupus erythematosus", ["hydroxychloroquine"]),
    ("pulmonary fibrosis", []),
    ("hemochromatosis", []),
]
COMORBIDITY_NAMES = [name for name, _ in COMORBIDITIES]
COMORBIDITY_MEDS = dict(COMORBIDITIES)
PICK_COMORBIDITY = Zipf(COMORBIDITY_NAMES, s=0.9)

SURGICAL_HISTORY = Zipf([
    "appendectomy", "laparoscopic cholecystectomy", "total knee arthroplasty", "cesarean section",
    "tonsillectomy", "inguinal herniorrhaphy", "hysterectomy", "coronary artery bypass grafting via median sternotomy",
    "percutaneous coronary intervention with stent placement", "total hip arthroplasty",
    "transurethral resection of the prostate", "carpal tunnel release", "lumbar laminectomy",
    "thyroidectomy", "partial colectomy", "cataract extraction", "rotator cuff repair",
    "dual-chamber pacemaker implantation", "carotid endarterectomy", "nephrectomy", "splenectomy",
    "lumpectomy", "arthroscopic meniscectomy", "parathyroidectomy", "tracheostomy, since decannulated",
    "open reduction and internal fixation of a distal radius fracture",
])

# History items that only fit one sex, or that a young adult would rarely have.
FEMALE_ONLY = ("cesarean section", "hysterectomy", "lumpectomy")
MALE_ONLY = ("transurethral resection of the prostate", "benign prostatic hyperplasia")
OLDER_ONLY = ("coronary artery bypass grafting via median sternotomy", "percutaneous coronary intervention with stent placement",
              "total knee arthroplasty", "total hip arthroplasty", "transurethral resection of the prostate",
              "carotid endarterectomy", "cataract extraction", "dual-chamber pacemaker implantation",
              "coronary artery disease", "heart failure with reduced ejection fraction", "prior cerebrovascular accident",
              "dementia", "Parkinson disease", "osteoporosis", "ischemic cardiomyopathy", "benign prostatic hyperplasia",
              "peripheral arterial disease", "polymyalgia rheumatica", "chronic kidney disease stage 3", "pulmonary fibrosis")


def unsuitable(ctx: dict) -> tuple[str, ...]:
    """History items to leave out for this patient's sex and age."""
    excluded = MALE_ONLY if ctx["he"] == "she" else FEMALE_ONLY
    return excluded + (OLDER_ONLY if int(ctx["age"]) < 50 else ())


ALLERGIES = Zipf([
    "No known drug allergies.", "NKDA.", "Penicillin (rash).", "Sulfa drugs (hives).",
    "Codeine (nausea).", "Lisinopril (angioedema).", "Iodinated contrast (hives); premedicate.",
    "Shellfish.", "Latex.", "Morphine (pruritus).", "Vancomycin (infusion reaction).",
])

SOCIAL_HISTORY = [
    "Lives with {pick:a spouse|an adult daughter|a roommate|a partner} and is independent in activities of daily living. {Smoker}.",
    "{Smoker}. Drinks alcohol {pick:rarely|socially|1-2 drinks per week|daily, 2-3 beers}. Denies illicit drug use.",
    "Retired {pick:teacher|machinist|accountant|nurse|truck driver|electrician}. Lives alone in a two-story home. {Smoker}.",
    "Works as a {pick:warehouse supervisor|software developer|cashier|home health aide|bus driver}. {Smoker}. Occasional alcohol.",
]
SMOKER = uniform([
    "Never smoker", "Former smoker, {n:10-45} pack-years, quit in {n:1995-2018}",
    "Current smoker, {pick:half a pack|1 pack|2 packs} per day", "Former smoker, quit {n:2-20} years ago",
])
FAMILY_HISTORY = Zipf([
    "Father with myocardial infarction at age {n:48-66}; mother with type 2 diabetes mellitus.",
    "Noncontributory.",
    "Mother with breast cancer; father with hypertension and hyperlipidemia.",
    "Brother with colon cancer diagnosed at age {n:45-60}.",
    "Mother with hypothyroidism and rheumatoid arthritis.",
    "Father died of a cerebrovascular accident at age {n:62-80}.",
    "No family history of premature coronary artery disease, sudden cardiac death, or bleeding disorders.",
], s=0.5)

# Physical examination: normal findings by system; a scenario's abnormal findings replace one.
EXAM_NORMAL = [
    ("General", ["No acute distress.", "Well-appearing, in no acute distress.",
                 "Alert, conversant, no acute distress."]),
    ("HEENT", ["Normocephalic, atraumatic. Moist mucous membranes. No scleral icterus.",
               "Pupils equal, round, and reactive to light. Oropharynx clear."]),
    ("Neck", ["Supple. No jugular venous distension. No cervical lymphadenopathy.",
              "No lymphadenopathy or thyromegaly."]),
    ("Cardiovascular", ["Regular rate and rhythm. No murmurs, rubs, or gallops.",
                        "RRR, normal S1 and S2, no murmurs."]),
    ("Lungs", ["Clear to auscultation bilaterally. No wheezes, rales, or rhonchi.",
               "CTAB, normal work of breathing."]),
    ("Abdomen", ["Soft, nontender, nondistended. Normoactive bowel sounds. No hepatosplenomegaly.",
                 "Soft, non-tender, no rebound or guarding. No organomegaly."]),
    ("Extremities", ["No clubbing, cyanosis, or edema.", "Warm and well perfused, no lower extremity edema."]),
    ("Neuro", ["Alert and oriented x3. Cranial nerves II-XII grossly intact. Moves all extremities.",
               "Alert and oriented to person, place, and time. No focal neurologic deficits."]),
    ("Skin", ["Warm and dry. No rashes or jaundice.", "No ulcers, erythema, or induration."]),
]

LAB_PANEL = [
    "WBC {f:4.2-10.5} K/uL", "hemoglobin {f:11.0-15.8} g/dL", "platelets {n:160-380} K/uL",
    "sodium {n:135-144} mmol/L", "potassium {f:3.6-4.9} mmol/L", "bicarbonate {n:22-28} mmol/L",
    "BUN {n:9-24} mg/dL", "creatinine {f:0.68-1.24} mg/dL", "glucose {n:88-160} mg/dL",
    "AST {n:14-38} U/L", "ALT {n:11-42} U/L", "albumin {f:3.4-4.6} g/dL",
]

DISPOSITION = Zipf(["home", "home with home health services", "a skilled nursing facility",
                    "an acute rehabilitation facility", "home with hospice services"])

RETURN_PRECAUTIONS = [
    "Discussed signs and symptoms that should prompt return to the emergency department, including {neg1}, {neg2}, or fever above 101.5 F.",
    "The patient was instructed to return for worsening {sym1}, {neg1}, or any new concerning symptoms.",
    "Return precautions were reviewed; the patient verbalized understanding of the signs and symptoms of {dx_short} recurrence.",
]


# --------------------------------------------------------------------------------------------------
# Medical: clinical scenarios
# --------------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    """One reason for a hospital stay: the facts every note type about it draws from."""

    dx: str                          # diagnosis as written in the note
    dx_short: str                    # shorter form for running text
    complaint: str                   # chief complaint, in the note's words
    symptoms: list[str]
    negatives: list[str]             # pertinent negatives
    exam: list[tuple[str, str]]      # (system, abnormal finding)
    labs: list[str]
    study: str                       # key into STUDIES
    findings: list[str]              # what that study showed
    impression: str
    ed_treatment: str
    course: list[str]                # hospital course sentences, in order
    plan: list[str]                  # daily plan items for the main problem
    new_meds: list[str]              # started at discharge
    followup: str
    consultant: str
    ages: tuple[int, int] = (35, 85)
    procedure: str = ""
    unit: str = "the medicine floor"
    heart_rate: tuple[int, int] = (58, 104)       # admission vitals, so the exam and the numbers agree
    spo2: tuple[int, int] = (94, 99)              # below 93% the note puts the patient on oxygen
    anticoagulated: bool = False                  # on a heparin drip, so no separate DVT prophylaxis
    temp_c: tuple[float, float] = (36.4, 37.4)


SCENARIOS = [
    Scenario(
        dx="non-ST-elevation myocardial infarction", dx_short="NSTEMI",
        complaint="substernal chest pressure",
        symptoms=["substernal chest pressure radiating to the left arm", "diaphoresis", "dyspnea on exertion",
                  "nausea"],
        negatives=["syncope", "palpitations", "orthopnea", "hematemesis"],
        exam=[("Cardiovascular", "Regular rate and rhythm, soft S4, no murmurs."),
              ("General", "Diaphoretic and uncomfortable-appearing.")],
        labs=["troponin I {f:0.45-6.80} ng/mL, peaking at {f:7.1-22.4} ng/mL", "LDL cholesterol {n:118-196} mg/dL",
              "hemoglobin A1c {f:5.9-8.9}%"],
        study="echo",
        findings=["Hypokinesis of the mid and apical anterior wall and apex.",
                  "Left ventricular ejection fraction estimated at {n:40-50}%.", "No significant valvular disease."],
        impression="Regional wall motion abnormality in the left anterior descending artery territory with mildly reduced left ventricular systolic function.",
        ed_treatment="aspirin 324 mg, sublingual nitroglycerin, and a heparin infusion",
        course=["Electrocardiogram showed {n:1-2} mm ST depressions in leads V4 through V6.",
                "Cardiology was consulted and {he} underwent cardiac catheterization on hospital day {n:1-2}, which showed a {n:80-99}% stenosis of the proximal left anterior descending artery.",
                "Percutaneous coronary intervention was performed with placement of a drug-eluting stent without complication.",
                "{He} was started on dual antiplatelet therapy with aspirin and ticagrelor, high-intensity atorvastatin, and metoprolol.",
                "Transthoracic echocardiogram showed an ejection fraction of {n:40-50}% with anterior hypokinesis."],
        plan=["Continue aspirin 81 mg and ticagrelor 90 mg twice daily for at least 12 months.",
              "Atorvastatin 80 mg nightly; repeat lipid panel in 6 weeks.",
              "Titrate metoprolol succinate to heart rate 55-65.", "Refer to cardiac rehabilitation."],
        new_meds=["ticagrelor 90 mg PO twice daily", "atorvastatin 80 mg PO nightly",
                  "metoprolol succinate 25 mg PO daily", "nitroglycerin 0.4 mg sublingual every 5 minutes as needed for chest pain"],
        followup="cardiology in 1-2 weeks", consultant="cardiology",
        procedure="left heart catheterization with percutaneous coronary intervention", ages=(45, 85),
        unit="the cardiac step-down unit", anticoagulated=True),
    Scenario(
        dx="community-acquired pneumonia", dx_short="pneumonia",
        complaint="cough and fever",
        symptoms=["productive cough with yellow sputum", "fevers to 102 F", "pleuritic chest pain", "fatigue",
                  "shortness of breath"],
        negatives=["hemoptysis", "recent travel", "sick contacts", "night sweats"],
        exam=[("Lungs", "Crackles and egophony at the right base."),
              ("General", "Ill-appearing, tachypneic, speaking in full sentences.")],
        labs=["WBC {f:12.4-21.0} K/uL with {n:82-91}% neutrophils", "procalcitonin {f:0.6-4.8} ng/mL",
              "lactate {f:1.1-2.6} mmol/L"],
        study="cxr",
        findings=["Dense consolidation in the right lower lobe with air bronchograms.",
                  "Small right pleural effusion.", "No pneumothorax."],
        impression="Right lower lobe consolidation compatible with pneumonia in the appropriate clinical setting. Recommend follow-up radiograph in 6-8 weeks to document resolution.",
        ed_treatment="ceftriaxone, azithromycin, and 1 liter of normal saline",
        course=["{He} was treated with ceftriaxone and azithromycin.",
                "Blood cultures remained negative and sputum culture grew normal respiratory flora.",
                "{His} oxygen requirement resolved by hospital day {n:2-4} and {he} defervesced.",
                "Antibiotics were transitioned to oral amoxicillin-clavulanate to complete a {n:5-7}-day course."],
        plan=["Continue ceftriaxone 1 g IV daily and azithromycin 500 mg daily.", "Wean supplemental oxygen to keep SpO2 above 92%.",
              "Incentive spirometry every hour while awake.", "Follow up blood cultures."],
        new_meds=["amoxicillin-clavulanate 875/125 mg PO twice daily for 3 more days",
                  "benzonatate 100 mg PO three times daily as needed for cough"],
        followup="primary care in 1 week with repeat chest radiograph in 6 weeks", consultant="pulmonology",
        heart_rate=(88, 118), temp_c=(37.9, 39.3), spo2=(87, 96)),
    Scenario(
        dx="acute on chronic systolic heart failure exacerbation", dx_short="heart failure exacerbation",
        complaint="worsening shortness of breath and leg swelling",
        symptoms=["progressive dyspnea on exertion", "three-pillow orthopnea", "paroxysmal nocturnal dyspnea",
                  "bilateral lower extremity edema", "a {n:5-14}-pound weight gain"],
        negatives=["chest pain", "fever", "productive cough", "palpitations"],
        exam=[("Neck", "Jugular venous pressure elevated to the angle of the jaw."),
              ("Lungs", "Bibasilar crackles."),
              ("Extremities", "2+ pitting edema to the knees bilaterally.")],
        labs=["BNP {n:980-3400} pg/mL", "creatinine {f:1.2-1.9} mg/dL", "troponin I {f:0.03-0.09} ng/mL, flat"],
        study="cxr",
        findings=["Cardiomegaly with pulmonary vascular congestion.", "Small bilateral pleural effusions.",
                  "Interstitial edema with Kerley B lines."],
        impression="Findings consistent with congestive heart failure and mild interstitial pulmonary edema.",
        ed_treatment="furosemide 80 mg IV and supplemental oxygen",
        course=["{He} was diuresed with intravenous furosemide with net negative {f:4.5-9.8} liters over the admission.",
                "Dietary indiscretion and medication nonadherence were identified as the likely precipitants.",
                "Transthoracic echocardiogram showed an ejection fraction of {n:20-35}% with global hypokinesis, unchanged from prior.",
                "Guideline-directed medical therapy was optimized; spironolactone and dapagliflozin were added."],
        plan=["Continue furosemide 80 mg IV twice daily, goal net negative 1-2 L per day.", "Strict intake and output, daily weights.",
              "Fluid restriction 1.5 L and 2 g sodium diet.", "Monitor potassium and magnesium; replete as needed."],
        new_meds=["furosemide 40 mg PO twice daily", "spironolactone 25 mg PO daily", "dapagliflozin 10 mg PO daily"],
        followup="heart failure clinic in 7 days with a basic metabolic panel", consultant="cardiology",
        ages=(55, 90), spo2=(86, 94)),
    Scenario(
        dx="atrial fibrillation with rapid ventricular response", dx_short="atrial fibrillation",
        complaint="palpitations",
        symptoms=["palpitations", "lightheadedness", "mild dyspnea", "fatigue"],
        negatives=["syncope", "chest pain", "focal weakness", "melena"],
        exam=[("Cardiovascular", "Irregularly irregular rhythm, tachycardic, no murmurs.")],
        labs=["TSH {f:0.9-3.8} mIU/L", "magnesium {f:1.6-2.2} mg/dL", "troponin negative x2"],
        study="echo",
        findings=["Left atrium moderately dilated.", "Left ventricular ejection fraction {n:50-60}%.",
                  "Mild mitral regurgitation. No intracardiac thrombus seen."],
        impression="Preserved biventricular function with moderate left atrial enlargement.",
        ed_treatment="intravenous diltiazem boluses followed by a diltiazem infusion",
        course=["Rate control was achieved with diltiazem and then oral metoprolol.",
                "{His} CHA2DS2-VASc score was {n:2-5}, and after discussion of risks and benefits {he} was started on apixaban for anticoagulation.",
                "{He} spontaneously converted to sinus rhythm on hospital day {n:1-3}.",
                "TSH was within normal limits and echocardiogram showed a preserved ejection fraction."],
        plan=["Continue metoprolol tartrate 50 mg every 6 hours; transition to succinate once rate controlled.",
              "Anticoagulation with apixaban 5 mg twice daily.", "Telemetry monitoring.", "Keep potassium above 4 and magnesium above 2."],
        new_meds=["apixaban 5 mg PO twice daily", "metoprolol succinate 100 mg PO daily"],
        followup="cardiology/electrophysiology in 2-4 weeks", consultant="cardiology",
        heart_rate=(118, 158)),
    Scenario(
        dx="acute exacerbation of chronic obstructive pulmonary disease", dx_short="COPD exacerbation",
        complaint="shortness of breath and wheezing",
        symptoms=["increased dyspnea", "wheezing", "increased sputum production", "chest tightness"],
        negatives=["fever", "hemoptysis", "leg swelling", "chest pain"],
        exam=[("Lungs", "Diffuse expiratory wheezes with prolonged expiratory phase and decreased air movement."),
              ("General", "Using accessory muscles, speaking in short phrases.")],
        labs=["venous blood gas pH {f:7.31-7.38} with pCO2 {n:48-62} mmHg", "WBC {f:9.1-13.5} K/uL"],
        study="cxr",
        findings=["Hyperinflated lungs with flattening of the hemidiaphragms.", "No focal consolidation.",
                  "No pleural effusion or pneumothorax."],
        impression="Hyperinflation consistent with chronic obstructive pulmonary disease. No acute cardiopulmonary process.",
        ed_treatment="nebulized albuterol and ipratropium, methylprednisolone 125 mg IV, and azithromycin",
        course=["{He} was treated with scheduled nebulizers, prednisone 40 mg daily, and a 5-day course of azithromycin.",
                "BiPAP was not required.", "{His} wheezing improved and {he} was weaned to room air by hospital day {n:2-4}.",
                "Inhaler technique was reviewed and smoking cessation counseling was provided."],
        plan=["Prednisone 40 mg daily for a total of 5 days.", "Albuterol-ipratropium nebulizers every 4 hours and every 2 hours as needed.",
              "Azithromycin 250 mg daily.", "Ambulatory oxygen saturation testing before discharge."],
        new_meds=["prednisone 40 mg PO daily for 2 more days", "tiotropium 18 mcg inhaled daily"],
        followup="pulmonology in 4 weeks with pulmonary function tests", consultant="pulmonology",
        ages=(50, 88), spo2=(86, 93)),
    Scenario(
        dx="acute pulmonary embolism", dx_short="pulmonary embolism",
        complaint="pleuritic chest pain and shortness of breath",
        symptoms=["sudden-onset pleuritic chest pain", "shortness of breath", "left calf swelling", "palpitations"],
        negatives=["hemoptysis", "fever", "syncope", "recent surgery"],
        exam=[("Extremities", "Left calf swollen and tender, {n:2-4} cm larger than the right."),
              ("Cardiovascular", "Tachycardic, regular rhythm, no murmurs.")],
        labs=["D-dimer {n:1800-6400} ng/mL", "troponin I {f:0.02-0.12} ng/mL", "BNP {n:60-420} pg/mL"],
        study="ctpa",
        findings=["Filling defects in the segmental and subsegmental pulmonary arteries of the right lower lobe.",
                  "The right ventricle to left ventricle ratio is {f:0.8-1.1}.", "No pulmonary infarct."],
        impression="Acute right lower lobe pulmonary embolism without CT evidence of right heart strain.",
        ed_treatment="a weight-based heparin infusion",
        course=["Venous duplex ultrasound showed occlusive deep vein thrombosis of the left popliteal vein.",
                "{He} was treated with a heparin infusion and transitioned to apixaban on hospital day {n:1-3}.",
                "The event was felt to be provoked by {pick:a long car trip|recent immobilization|estrogen therapy|a recent orthopedic injury}.",
                "Age-appropriate cancer screening was reviewed and is up to date."],
        plan=["Continue heparin infusion per nomogram; transition to apixaban 10 mg twice daily for 7 days then 5 mg twice daily.",
              "Ambulate as tolerated.", "Monitor for signs of bleeding.",
              "Daily CBC; monitor platelets for heparin-induced thrombocytopenia."],
        new_meds=["apixaban 10 mg PO twice daily for 7 days, then 5 mg PO twice daily"],
        followup="primary care in 1-2 weeks and hematology in 3 months", consultant="hematology", ages=(25, 80),
        heart_rate=(102, 128), spo2=(89, 96), anticoagulated=True),
    Scenario(
        dx="spontaneous right-sided pneumothorax", dx_short="pneumothorax",
        complaint="sudden chest pain and shortness of breath",
        symptoms=["sudden-onset right-sided chest pain", "shortness of breath", "dry cough"],
        negatives=["trauma", "fever", "hemoptysis", "leg swelling"],
        exam=[("Lungs", "Decreased breath sounds and hyperresonance over the right hemithorax.")],
        labs=["WBC {f:6.1-10.2} K/uL"],
        study="cxr",
        findings=["Right apical pneumothorax measuring {f:2.1-4.5} cm from the apex.", "No mediastinal shift.",
                  "Apical blebs suspected."],
        impression="Moderate right pneumothorax without radiographic signs of tension.",
        ed_treatment="supplemental oxygen and placement of a 14 French pigtail chest tube",
        course=["A pigtail chest tube was placed in the emergency department with re-expansion of the lung.",
                "The chest tube was placed to water seal on hospital day {n:1-2} and removed on hospital day {n:2-4} after a stable radiograph.",
                "Thoracic surgery was consulted and recommended CT of the chest to evaluate for bullous disease.",
                "{He} was counseled on smoking cessation and on avoiding air travel and scuba diving."],
        plan=["Chest tube to suction at -20 cm H2O; daily chest radiograph.", "Pain control with acetaminophen and ibuprofen.",
              "Trial of water seal in the morning."],
        new_meds=["ibuprofen 600 mg PO every 8 hours as needed with food"],
        followup="thoracic surgery in 2 weeks with a repeat chest radiograph", consultant="thoracic surgery",
        procedure="tube thoracostomy", ages=(18, 40), spo2=(90, 97)),
    Scenario(
        dx="acute calculous cholecystitis", dx_short="cholecystitis",
        complaint="right upper quadrant abdominal pain",
        symptoms=["right upper quadrant pain after fatty meals", "nausea and vomiting", "subjective fevers",
                  "anorexia"],
        negatives=["jaundice", "chest pain", "hematochezia", "dysuria"],
        exam=[("Abdomen", "Tender to palpation in the right upper quadrant with a positive Murphy sign and voluntary guarding.")],
        labs=["WBC {f:12.1-18.9} K/uL", "total bilirubin {f:0.8-1.9} mg/dL", "alkaline phosphatase {n:110-190} U/L",
              "lipase {n:20-58} U/L"],
        study="us_ruq",
        findings=["The gallbladder is distended with wall thickening to {n:5-8} mm and pericholecystic fluid.",
                  "Multiple mobile shadowing gallstones, the largest measuring {f:1.1-2.4} cm.",
                  "Positive sonographic Murphy sign.", "Common bile duct measures {n:3-6} mm."],
        impression="Cholelithiasis with sonographic findings of acute cholecystitis. No biliary ductal dilation.",
        ed_treatment="intravenous fluids, ondansetron, morphine, and piperacillin-tazobactam",
        course=["General surgery was consulted and {he} underwent an uncomplicated laparoscopic cholecystectomy on hospital day {n:1-2}.",
                "Antibiotics were discontinued 24 hours after surgery.",
                "{His} diet was advanced without difficulty and pain was controlled with oral analgesics.",
                "Surgical pathology showed acute and chronic cholecystitis with cholelithiasis."],
        plan=["NPO after midnight for cholecystectomy.", "Continue piperacillin-tazobactam 4.5 g IV every 8 hours.",
              "Hold apixaban; last dose documented.", "Ondansetron as needed for nausea."],
        new_meds=["oxycodone 5 mg PO every 6 hours as needed for severe pain, #10",
                  "docusate 100 mg PO twice daily while taking opioids"],
        followup="general surgery clinic in 2 weeks", consultant="general surgery",
        procedure="laparoscopic cholecystectomy", ages=(25, 80), temp_c=(37.0, 38.5)),
    Scenario(
        dx="acute interstitial pancreatitis", dx_short="pancreatitis",
        complaint="epigastric pain radiating to the back",
        symptoms=["severe epigastric pain radiating to the back", "nausea and vomiting", "inability to tolerate oral intake"],
        negatives=["melena", "jaundice", "chest pain", "fever"],
        exam=[("Abdomen", "Epigastric tenderness with guarding, hypoactive bowel sounds.")],
        labs=["lipase {n:900-6800} U/L", "triglycerides {n:140-1450} mg/dL", "calcium {f:8.4-9.8} mg/dL",
              "BUN {n:14-32} mg/dL"],
        study="ct_abd",
        findings=["Edematous enlargement of the pancreas with peripancreatic fat stranding and a small amount of fluid.",
                  "No pancreatic necrosis or walled-off collection.", "No biliary ductal dilation."],
        impression="Acute interstitial edematous pancreatitis without necrosis.",
        ed_treatment="aggressive intravenous fluid resuscitation with lactated Ringer's and hydromorphone",
        course=["{He} was managed with intravenous fluids, analgesia, and bowel rest.",
                "The etiology was felt to be {pick:alcohol use|hypertriglyceridemia|gallstones}; right upper quadrant ultrasound showed {pick:no cholelithiasis|cholelithiasis without cholecystitis}.",
                "{His} diet was advanced to a low-fat diet on hospital day {n:2-4} and {he} tolerated it well.",
                "Alcohol cessation counseling was provided and fenofibrate was started for hypertriglyceridemia."],
        plan=["Lactated Ringer's at 150 mL/hour; reassess volume status every shift.", "Advance to clear liquids as pain allows.",
              "Hydromorphone as needed for pain.", "Repeat triglycerides and lipid panel."],
        new_meds=["fenofibrate 145 mg PO daily", "pantoprazole 40 mg PO daily"],
        followup="gastroenterology in 4 weeks", consultant="gastroenterology", ages=(25, 75)),
    Scenario(
        dx="acute uncomplicated sigmoid diverticulitis", dx_short="diverticulitis",
        complaint="left lower quadrant abdominal pain",
        symptoms=["left lower quadrant abdominal pain", "low-grade fevers", "loose stools", "anorexia"],
        negatives=["hematochezia", "dysuria", "vomiting", "weight loss"],
        exam=[("Abdomen", "Tenderness in the left lower quadrant without rebound or peritoneal signs.")],
        labs=["WBC {f:11.2-16.8} K/uL", "C-reactive protein {n:38-140} mg/L"],
        study="ct_abd",
        findings=["Segmental wall thickening of the sigmoid colon with adjacent fat stranding and multiple diverticula.",
                  "No extraluminal gas or drainable fluid collection.", "Normal appendix."],
        impression="Acute uncomplicated sigmoid diverticulitis. No abscess or perforation.",
        ed_treatment="ciprofloxacin and metronidazole",
        course=["{He} was treated with bowel rest and intravenous antibiotics with improvement in pain.",
                "{His} diet was advanced and {he} was transitioned to oral ciprofloxacin and metronidazole.",
                "Colonoscopy is recommended 6-8 weeks after resolution if not done within the last year."],
        plan=["Clear liquid diet; advance as tolerated.", "Ciprofloxacin 400 mg IV every 12 hours and metronidazole 500 mg IV every 8 hours."],
        new_meds=["ciprofloxacin 500 mg PO twice daily for 7 days", "metronidazole 500 mg PO three times daily for 7 days"],
        followup="gastroenterology for colonoscopy in 6-8 weeks", consultant="general surgery", ages=(40, 85)),
    Scenario(
        dx="upper gastrointestinal bleed from a duodenal ulcer", dx_short="upper GI bleed",
        complaint="black stools and lightheadedness",
        symptoms=["melena for {n:2-4} days", "lightheadedness on standing", "epigastric discomfort", "one episode of coffee-ground emesis"],
        negatives=["hematochezia", "chest pain", "syncope", "weight loss"],
        exam=[("General", "Pale, orthostatic."), ("Abdomen", "Mild epigastric tenderness. Melena on rectal examination.")],
        labs=["hemoglobin {f:6.4-8.6} g/dL (baseline {f:12.0-13.9})", "BUN {n:38-72} mg/dL", "INR {f:1.0-1.3}"],
        study="ct_abd",
        findings=["No active contrast extravasation.", "Mild duodenal wall thickening.", "Liver, spleen, and pancreas unremarkable."],
        impression="No CT evidence of active gastrointestinal hemorrhage. Nonspecific duodenal wall thickening.",
        ed_treatment="two large-bore IVs, a pantoprazole infusion, and 1 unit of packed red blood cells",
        course=["{He} received {n:2-3} units of packed red blood cells with an appropriate rise in hemoglobin.",
                "Esophagogastroduodenoscopy showed a {n:8-15} mm duodenal bulb ulcer with a visible vessel, treated with epinephrine injection and hemostatic clips.",
                "Helicobacter pylori biopsies were positive and quadruple therapy was started.",
                "Nonsteroidal anti-inflammatory drugs were discontinued. Hemoglobin remained stable for 48 hours."],
        plan=["Pantoprazole 40 mg IV twice daily.", "Transfuse for hemoglobin below 7 g/dL.", "Hold aspirin and all NSAIDs.",
              "Clear liquid diet after endoscopy."],
        new_meds=["pantoprazole 40 mg PO twice daily for 8 weeks", "bismuth quadruple therapy for 14 days"],
        followup="gastroenterology in 8 weeks; repeat endoscopy to confirm ulcer healing", consultant="gastroenterology",
        procedure="esophagogastroduodenoscopy with hemostasis"),
    Scenario(
        dx="obstructing left ureteral calculus with hydronephrosis", dx_short="nephrolithiasis",
        complaint="left flank pain",
        symptoms=["colicky left flank pain radiating to the groin", "gross hematuria", "nausea and vomiting"],
        negatives=["fever", "dysuria", "diarrhea", "abdominal distension"],
        exam=[("Abdomen", "Left costovertebral angle tenderness. Abdomen soft.")],
        labs=["urinalysis with {n:20-100} RBCs per high-power field", "creatinine {f:1.0-1.6} mg/dL", "WBC {f:7.0-11.8} K/uL"],
        study="ct_abd",
        findings=["{n:4-9} mm calculus at the left ureterovesical junction.", "Moderate left hydronephrosis and perinephric stranding.",
                  "Additional nonobstructing {n:2-4} mm calculi in the right kidney."],
        impression="Obstructing left ureterovesical junction calculus with moderate hydronephrosis. Bilateral nephrolithiasis.",
        ed_treatment="ketorolac, ondansetron, and intravenous fluids",
        course=["Urology was consulted and {he} underwent cystoscopy, left ureteroscopy with laser lithotripsy, and ureteral stent placement.",
                "Stone analysis is pending.", "{His} pain resolved and creatinine returned to baseline.",
                "{He} was counseled on increased fluid intake to at least 2.5 liters daily."],
        plan=["Tamsulosin 0.4 mg daily for medical expulsive therapy.", "Strain all urine.", "Ketorolac and oxycodone as needed."],
        new_meds=["tamsulosin 0.4 mg PO daily until stent removal", "oxybutynin 5 mg PO every 8 hours as needed for stent discomfort"],
        followup="urology in 1 week for stent removal", consultant="urology",
        procedure="cystoscopy, ureteroscopy with laser lithotripsy, and ureteral stent placement", ages=(25, 70)),
    Scenario(
        dx="acute pyelonephritis with sepsis", dx_short="pyelonephritis",
        complaint="fever, chills, and dysuria",
        symptoms=["dysuria and urinary frequency", "fevers and rigors", "right flank pain", "nausea"],
        negatives=["hematuria", "vaginal discharge", "diarrhea", "cough"],
        exam=[("Abdomen", "Right costovertebral angle tenderness."), ("General", "Febrile, flushed, and ill-appearing.")],
        labs=["WBC {f:14.0-22.5} K/uL", "lactate {f:2.1-3.8} mmol/L", "urinalysis positive for leukocyte esterase and nitrites"],
        study="us_renal",
        findings=["Mildly enlarged right kidney with decreased corticomedullary differentiation.", "No hydronephrosis.",
                  "No perinephric collection."],
        impression="Findings can be seen with pyelonephritis. No hydronephrosis or abscess.",
        ed_treatment="a 30 mL/kg fluid bolus and ceftriaxone",
        course=["Blood and urine cultures grew pan-sensitive Escherichia coli.",
                "{He} was treated with ceftriaxone and defervesced within 48 hours.",
                "Antibiotics were narrowed to oral cephalexin to complete a {n:10-14}-day course."],
        plan=["Continue ceftriaxone 1 g IV daily pending culture sensitivities.", "Trend lactate and WBC.",
              "Acetaminophen for fever."],
        new_meds=["cephalexin 500 mg PO four times daily to complete 14 days of therapy"],
        followup="primary care in 1 week", consultant="infectious disease", ages=(20, 85),
        heart_rate=(96, 124), temp_c=(38.4, 39.8)),
    Scenario(
        dx="left lower extremity cellulitis", dx_short="cellulitis",
        complaint="redness and swelling of the left leg",
        symptoms=["spreading redness of the left shin", "warmth and swelling", "pain with walking", "subjective fevers"],
        negatives=["purulent drainage", "trauma", "chest pain", "shortness of breath"],
        exam=[("Skin", "Well-demarcated erythema, warmth, and induration over the left anterior shin, {n:10-18} x {n:6-12} cm, marked.")],
        labs=["WBC {f:10.5-15.2} K/uL", "C-reactive protein {n:40-120} mg/L"],
        study="duplex",
        findings=["Normal compressibility of the left common femoral, femoral, and popliteal veins.",
                  "Subcutaneous edema without drainable fluid collection."],
        impression="No deep vein thrombosis of the left lower extremity. Subcutaneous edema.",
        ed_treatment="cefazolin 2 g IV",
        course=["{He} was treated with cefazolin with steady regression of erythema from the marked borders.",
                "Tinea pedis was noted between the toes and treated with topical clotrimazole.",
                "{He} was transitioned to oral cephalexin to complete a {n:5-10}-day course."],
        plan=["Cefazolin 2 g IV every 8 hours.", "Elevate the affected extremity.", "Mark borders of erythema daily."],
        new_meds=["cephalexin 500 mg PO four times daily for 5 days", "clotrimazole 1% cream twice daily between the toes"],
        followup="primary care in 1 week", consultant="infectious disease", temp_c=(37.2, 38.4)),
    Scenario(
        dx="diabetic foot ulcer with osteomyelitis of the right fifth metatarsal head", dx_short="osteomyelitis",
        complaint="a nonhealing foot ulcer",
        symptoms=["a draining ulcer on the lateral right foot", "foot swelling", "malodorous discharge"],
        negatives=["fever", "chest pain", "calf pain", "night sweats"],
        exam=[("Skin", "{n:1-3} cm ulcer over the right fifth metatarsal head with probe-to-bone positive base and surrounding erythema."),
              ("Neuro", "Decreased monofilament sensation in both feet.")],
        labs=["ESR {n:60-110} mm/hour", "C-reactive protein {n:45-150} mg/L", "hemoglobin A1c {f:8.1-11.6}%"],
        study="mri_foot",
        findings=["Marrow edema and T1 hypointensity in the fifth metatarsal head.", "Overlying soft tissue ulceration and sinus tract.",
                  "No drainable abscess."],
        impression="Acute osteomyelitis of the fifth metatarsal head underlying a soft tissue ulcer.",
        ed_treatment="vancomycin and cefepime",
        course=["Podiatry performed a partial fifth ray amputation; bone cultures grew methicillin-sensitive Staphylococcus aureus.",
                "Infectious disease recommended {n:4-6} weeks of intravenous cefazolin via a peripherally inserted central catheter.",
                "Endocrinology adjusted {his} insulin regimen for better glycemic control."],
        plan=["Continue vancomycin and cefepime pending bone culture results.", "Offload the right foot.",
              "Basal-bolus insulin with correction scale."],
        new_meds=["cefazolin 2 g IV every 8 hours via PICC through the planned end date", "insulin glargine 24 units at bedtime"],
        followup="infectious disease and podiatry in 1 week; weekly CBC, BMP, and ESR", consultant="infectious disease",
        procedure="partial fifth ray amputation", ages=(45, 80)),
    Scenario(
        dx="diabetic ketoacidosis", dx_short="DKA",
        complaint="nausea, vomiting, and excessive thirst",
        symptoms=["polyuria and polydipsia", "nausea and vomiting", "diffuse abdominal pain", "fatigue"],
        negatives=["fever", "dysuria", "chest pain", "diarrhea"],
        exam=[("General", "Ill-appearing with Kussmaul respirations and a fruity odor on the breath."),
              ("HEENT", "Dry mucous membranes.")],
        labs=["glucose {n:420-780} mg/dL", "anion gap {n:22-31}", "bicarbonate {n:6-14} mmol/L", "beta-hydroxybutyrate {f:4.5-9.9} mmol/L"],
        study="cxr", findings=["Clear lungs.", "Normal cardiomediastinal silhouette."],
        impression="No acute cardiopulmonary process.",
        ed_treatment="intravenous fluids and an insulin infusion",
        course=["{He} was admitted to the intensive care unit on an insulin infusion per DKA protocol.",
                "The anion gap closed within {n:12-24} hours and {he} was transitioned to subcutaneous basal-bolus insulin.",
                "The precipitant was felt to be {pick:insulin nonadherence|a viral gastroenteritis|cost barriers to insulin}.",
                "Diabetes education was provided and endocrinology followed during the admission."],
        plan=["Insulin infusion with hourly glucose checks; potassium replacement protocol.", "Transition to subcutaneous insulin when gap closes.",
              "Diabetes educator consult."],
        new_meds=["insulin glargine 22 units at bedtime", "insulin lispro 6 units with meals plus correction scale"],
        followup="endocrinology in 2 weeks", consultant="endocrinology", ages=(18, 60), unit="the medical intensive care unit"),
    Scenario(
        dx="hepatic encephalopathy secondary to alcohol-associated cirrhosis", dx_short="hepatic encephalopathy",
        complaint="confusion",
        symptoms=["progressive confusion", "daytime somnolence", "increasing abdominal girth", "constipation"],
        negatives=["fever", "melena", "hematemesis", "abdominal pain"],
        exam=[("Neuro", "Oriented to person only. Asterixis present."),
              ("Abdomen", "Distended with shifting dullness; hepatosplenomegaly difficult to assess."),
              ("HEENT", "Scleral icterus.")],
        labs=["ammonia {n:90-180} umol/L", "total bilirubin {f:2.4-6.8} mg/dL", "INR {f:1.5-2.3}", "platelets {n:48-96} K/uL",
              "sodium {n:127-133} mmol/L"],
        study="us_ruq",
        findings=["Coarsened, nodular liver contour consistent with cirrhosis.", "Splenomegaly measuring {f:14.0-17.5} cm.",
                  "Moderate ascites.", "Patent main portal vein with hepatopetal flow."],
        impression="Cirrhotic liver morphology with splenomegaly and ascites, consistent with portal hypertension.",
        ed_treatment="lactulose",
        course=["Diagnostic paracentesis showed no evidence of spontaneous bacterial peritonitis.",
                "{His} mental status improved with lactulose titrated to three bowel movements daily, and rifaximin was added.",
                "Thrombocytopenia and coagulopathy were attributed to cirrhosis; no bleeding occurred.",
                "{He} underwent large-volume paracentesis with removal of {f:4.0-7.5} liters and albumin replacement."],
        plan=["Lactulose 30 mL every 2 hours until bowel movement, then titrate to 3 soft stools daily.", "Rifaximin 550 mg twice daily.",
              "Fall and aspiration precautions.", "Hepatology consult regarding transplant candidacy."],
        new_meds=["lactulose 20 g PO three times daily", "rifaximin 550 mg PO twice daily", "spironolactone 100 mg PO daily",
                  "furosemide 40 mg PO daily"],
        followup="hepatology in 2 weeks", consultant="hepatology",
        procedure="ultrasound-guided paracentesis", ages=(40, 75)),
    Scenario(
        dx="methotrexate-associated pancytopenia", dx_short="pancytopenia",
        complaint="fatigue and easy bruising",
        symptoms=["fatigue", "easy bruising", "oral ulcers", "gum bleeding"],
        negatives=["melena", "fever", "weight loss", "night sweats"],
        exam=[("Skin", "Scattered ecchymoses on the forearms and petechiae on the lower legs."),
              ("HEENT", "Several shallow oral ulcers.")],
        labs=["WBC {f:1.1-2.6} K/uL with absolute neutrophil count {n:400-1100}", "hemoglobin {f:7.2-9.4} g/dL",
              "platelets {n:18-62} K/uL", "creatinine {f:1.4-2.2} mg/dL", "MCV {n:102-112} fL"],
        study="us_renal", findings=["Normal-sized kidneys without hydronephrosis.", "Mildly increased cortical echogenicity."],
        impression="Mild medical renal disease. No hydronephrosis.",
        ed_treatment="leucovorin",
        course=["Methotrexate was held; the patient had been taking it daily rather than weekly in error.",
                "Hematology was consulted and recommended leucovorin rescue until methotrexate levels were undetectable.",
                "Thrombocytopenia and neutropenia recovered over {n:5-9} days; no transfusion was needed.",
                "Rheumatology recommended transitioning from methotrexate to an alternative disease-modifying agent."],
        plan=["Hold methotrexate.", "Leucovorin 15 mg every 6 hours.", "Neutropenic precautions; daily CBC with differential.",
              "Transfuse platelets for count below 10 K/uL or bleeding."],
        new_meds=["hydroxychloroquine 200 mg PO twice daily", "folic acid 1 mg PO daily"],
        followup="rheumatology in 1 week and hematology in 2 weeks with a CBC", consultant="hematology",
        ages=(45, 85)),
    Scenario(
        dx="diffuse lymphadenopathy and hepatosplenomegaly concerning for lymphoma", dx_short="lymphadenopathy",
        complaint="night sweats and weight loss",
        symptoms=["drenching night sweats", "unintentional weight loss of {n:10-25} pounds", "painless neck swelling", "early satiety"],
        negatives=["fever", "cough", "bone pain", "pruritus"],
        exam=[("Neck", "Multiple firm, nontender, mobile cervical and supraclavicular lymph nodes up to {n:2-4} cm."),
              ("Abdomen", "Hepatosplenomegaly with the spleen tip palpable {n:3-6} cm below the costal margin.")],
        labs=["LDH {n:310-780} U/L", "uric acid {f:6.2-8.8} mg/dL", "hemoglobin {f:9.8-11.8} g/dL"],
        study="ct_abd",
        findings=["Bulky retroperitoneal and mesenteric lymphadenopathy, the largest conglomerate measuring {f:4.1-8.6} cm.",
                  "Hepatosplenomegaly; the spleen measures {f:15.5-19.0} cm.", "No bowel obstruction."],
        impression="Diffuse lymphadenopathy and hepatosplenomegaly, highly suspicious for lymphoma. Tissue sampling recommended.",
        ed_treatment="intravenous fluids",
        course=["Excisional biopsy of a left cervical lymph node was performed by general surgery.",
                "Pathology showed diffuse large B-cell lymphoma; staging PET-CT and bone marrow biopsy were arranged.",
                "Allopurinol was started for tumor lysis prophylaxis.",
                "Hematology/oncology met with {him} to discuss the diagnosis and planned chemoimmunotherapy."],
        plan=["Excisional lymph node biopsy tomorrow.", "Allopurinol 300 mg daily for tumor lysis prophylaxis.",
              "Hepatitis B and HIV screening before chemotherapy."],
        new_meds=["allopurinol 300 mg PO daily"],
        followup="hematology/oncology in 3-5 days", consultant="hematology/oncology",
        procedure="excisional cervical lymph node biopsy", ages=(30, 80)),
    Scenario(
        dx="acute ischemic stroke in the right middle cerebral artery territory", dx_short="ischemic stroke",
        complaint="left-sided weakness",
        symptoms=["sudden left arm and leg weakness", "slurred speech", "left facial droop"],
        negatives=["headache", "seizure activity", "vision loss", "trauma"],
        exam=[("Neuro", "Left facial droop, left arm drift, and 4/5 strength in the left leg. NIH Stroke Scale {n:3-9}.")],
        labs=["glucose {n:98-170} mg/dL", "LDL cholesterol {n:102-168} mg/dL", "hemoglobin A1c {f:5.6-7.9}%"],
        study="mri_brain",
        findings=["Restricted diffusion in the right corona radiata and posterior limb of the internal capsule.",
                  "No hemorrhagic transformation.", "Chronic small vessel ischemic changes."],
        impression="Acute infarct in the right middle cerebral artery territory without hemorrhage.",
        ed_treatment="evaluation by the stroke team; {he} was outside the window for thrombolysis",
        course=["CT head showed no acute intracranial hemorrhage.",
                "MRI brain confirmed an acute right subcortical infarct.", "Carotid ultrasound showed less than 50% stenosis bilaterally.",
                "{He} was started on aspirin and clopidogrel for 21 days and high-intensity atorvastatin.",
                "Telemetry showed no atrial fibrillation; a 30-day event monitor was arranged."],
        plan=["Permissive hypertension for 24 hours, then goal blood pressure below 130/80.", "Aspirin 81 mg and clopidogrel 75 mg daily.",
              "Physical, occupational, and speech therapy evaluations.", "Swallow screen before oral intake."],
        new_meds=["clopidogrel 75 mg PO daily for 21 days", "atorvastatin 80 mg PO nightly"],
        followup="neurology stroke clinic in 4-6 weeks", consultant="neurology", ages=(50, 90)),
    Scenario(
        dx="acute kidney injury, prerenal", dx_short="acute kidney injury",
        complaint="weakness and decreased oral intake",
        symptoms=["generalized weakness", "poor oral intake", "diarrhea for several days", "dizziness on standing"],
        negatives=["dysuria", "hematuria", "flank pain", "fever"],
        exam=[("HEENT", "Dry mucous membranes."), ("General", "Orthostatic; tired-appearing.")],
        labs=["creatinine {f:2.1-4.2} mg/dL (baseline {f:0.9-1.3})", "BUN {n:40-88} mg/dL", "potassium {f:5.2-6.1} mmol/L",
              "fractional excretion of sodium {f:0.2-0.9}%"],
        study="us_renal", findings=["Normal-sized kidneys.", "No hydronephrosis.", "Bladder decompressed."],
        impression="No hydronephrosis or other cause of postrenal obstruction.",
        ed_treatment="intravenous fluids and sodium zirconium cyclosilicate for hyperkalemia",
        course=["Lisinopril and hydrochlorothiazide were held and {he} was given intravenous fluids.",
                "Creatinine improved to {f:1.1-1.5} mg/dL by discharge.",
                "Nephrology was consulted and agreed with a prerenal etiology related to volume depletion and ACE inhibitor use.",
                "Renally dosed medications were adjusted and nephrotoxic agents were avoided."],
        plan=["Hold lisinopril, hydrochlorothiazide, and metformin.", "Normal saline at 100 mL/hour.",
              "Daily basic metabolic panel; avoid nephrotoxins and IV contrast."],
        new_meds=[],
        followup="primary care in 1 week with a basic metabolic panel", consultant="nephrology", ages=(55, 92)),
    Scenario(
        dx="symptomatic hyponatremia due to SIADH", dx_short="hyponatremia",
        complaint="confusion and unsteady gait",
        symptoms=["new confusion", "unsteady gait", "headache", "nausea"],
        negatives=["seizure", "vomiting", "diarrhea", "fever"],
        exam=[("Neuro", "Mildly inattentive, oriented to person and place. No asterixis.")],
        labs=["sodium {n:118-126} mmol/L", "serum osmolality {n:248-268} mOsm/kg", "urine osmolality {n:380-540} mOsm/kg",
              "urine sodium {n:48-90} mmol/L", "TSH {f:1.0-3.5} mIU/L"],
        study="ct_head", findings=["No acute intracranial hemorrhage, mass effect, or midline shift.",
                                    "Age-appropriate volume loss."],
        impression="No acute intracranial abnormality.",
        ed_treatment="a 100 mL bolus of 3% saline",
        course=["Hyponatremia was attributed to SIADH in the setting of {pick:sertraline use|a recent pneumonia|postoperative pain}.",
                "Fluid restriction to 1 liter daily and salt tablets were started, with sodium correcting by no more than 8 mmol/L per day.",
                "{His} mental status returned to baseline as sodium improved to {n:130-134} mmol/L."],
        plan=["Fluid restriction 1 L/day.", "Sodium checks every 4 hours; limit correction to 8 mmol/L in 24 hours.",
              "Hold sertraline."],
        new_meds=["sodium chloride 1 g PO three times daily"],
        followup="primary care in 1 week with a sodium level", consultant="nephrology", ages=(60, 92)),
    Scenario(
        dx="acute appendicitis", dx_short="appendicitis",
        complaint="right lower quadrant abdominal pain",
        symptoms=["periumbilical pain migrating to the right lower quadrant", "anorexia", "nausea", "low-grade fever"],
        negatives=["diarrhea", "dysuria", "hematochezia", "vaginal bleeding"],
        exam=[("Abdomen", "Tenderness at McBurney's point with rebound tenderness and a positive Rovsing sign.")],
        labs=["WBC {f:12.2-17.6} K/uL", "urinalysis negative"],
        study="ct_abd",
        findings=["Dilated appendix measuring {n:9-14} mm with wall enhancement and periappendiceal fat stranding.",
                  "Appendicolith at the base.", "No abscess or free air."],
        impression="Acute appendicitis without perforation or abscess.",
        ed_treatment="morphine, ondansetron, and piperacillin-tazobactam",
        course=["{He} underwent laparoscopic appendectomy without complication.",
                "Pathology confirmed acute suppurative appendicitis.",
                "{He} tolerated a regular diet on postoperative day 1 and was ambulating independently."],
        plan=["NPO, intravenous fluids.", "Piperacillin-tazobactam preoperatively.", "Operating room today."],
        new_meds=["acetaminophen 650 mg PO every 6 hours as needed", "ibuprofen 400 mg PO every 6 hours as needed with food"],
        followup="general surgery clinic in 2 weeks", consultant="general surgery",
        procedure="laparoscopic appendectomy", ages=(16, 55), temp_c=(37.3, 38.3)),
    Scenario(
        dx="statin-associated rhabdomyolysis", dx_short="rhabdomyolysis",
        complaint="diffuse muscle pain and dark urine",
        symptoms=["diffuse myalgias", "proximal muscle weakness", "dark, tea-colored urine"],
        negatives=["fever", "trauma", "seizure", "new rash"],
        exam=[("Extremities", "Tenderness of the thighs and upper arms; strength 4/5 proximally.")],
        labs=["creatine kinase {n:12000-48000} U/L", "creatinine {f:1.3-2.4} mg/dL", "urinalysis positive for blood with 0-2 RBCs",
              "potassium {f:4.6-5.6} mmol/L"],
        study="us_renal", findings=["Normal-sized kidneys.", "No hydronephrosis."], impression="Unremarkable renal ultrasound.",
        ed_treatment="aggressive intravenous fluids",
        course=["Atorvastatin was discontinued; {he} had recently been started on {pick:clarithromycin|gemfibrozil|diltiazem}, a likely interacting medication.",
                "Creatine kinase trended down with intravenous hydration and renal function recovered.",
                "A lipid-lowering strategy without statins will be revisited once symptoms have resolved."],
        plan=["Intravenous fluids at 200 mL/hour, goal urine output 200 mL/hour.", "Daily CK and basic metabolic panel.", "Discontinue atorvastatin."],
        new_meds=["ezetimibe 10 mg PO daily"],
        followup="primary care in 1 week with CK and creatinine", consultant="nephrology", ages=(45, 80)),
    Scenario(
        dx="Clostridioides difficile colitis", dx_short="C. difficile colitis",
        complaint="watery diarrhea",
        symptoms=["{n:6-12} episodes of watery diarrhea daily", "crampy lower abdominal pain", "low-grade fevers"],
        negatives=["hematochezia", "vomiting", "recent travel", "sick contacts"],
        exam=[("Abdomen", "Mild diffuse tenderness, hyperactive bowel sounds, no peritoneal signs.")],
        labs=["WBC {f:11.5-19.8} K/uL", "creatinine {f:1.0-1.7} mg/dL", "stool C. difficile toxin positive"],
        study="ct_abd", findings=["Diffuse colonic wall thickening with pericolonic stranding.", "No pneumatosis or free air."],
        impression="Pancolitis, likely infectious given the clinical history.",
        ed_treatment="intravenous fluids",
        course=["{He} had completed a course of {pick:clindamycin|ciprofloxacin|amoxicillin-clavulanate} two weeks prior to admission.",
                "Stool testing was positive for Clostridioides difficile toxin and oral vancomycin was started.",
                "Diarrhea improved over {n:3-5} days; contact precautions were maintained."],
        plan=["Oral vancomycin 125 mg four times daily for 10 days.", "Contact precautions.", "Avoid antimotility agents."],
        new_meds=["vancomycin 125 mg PO four times daily to complete 10 days"],
        followup="primary care in 1-2 weeks", consultant="infectious disease", ages=(40, 90)),
    Scenario(
        dx="acute pericarditis", dx_short="pericarditis",
        complaint="sharp chest pain",
        symptoms=["sharp chest pain worse when lying flat and improved by leaning forward", "recent upper respiratory infection"],
        negatives=["exertional chest pain", "syncope", "leg swelling", "hemoptysis"],
        exam=[("Cardiovascular", "Three-component pericardial friction rub at the left sternal border.")],
        labs=["C-reactive protein {n:22-90} mg/L", "troponin I less than 0.03 ng/mL"],
        study="echo",
        findings=["Small circumferential pericardial effusion without tamponade physiology.",
                  "Left ventricular ejection fraction {n:55-65}%.", "No regional wall motion abnormalities."],
        impression="Small pericardial effusion. Normal biventricular function.",
        ed_treatment="ibuprofen",
        course=["Electrocardiogram showed diffuse concave ST elevations with PR depression.",
                "Echocardiogram showed a small pericardial effusion without tamponade.",
                "{He} was treated with high-dose ibuprofen and colchicine with resolution of pain."],
        plan=["Ibuprofen 600 mg three times daily with pantoprazole.", "Colchicine 0.6 mg twice daily for 3 months.", "Avoid strenuous exercise."],
        new_meds=["ibuprofen 600 mg PO three times daily for 2 weeks, then taper", "colchicine 0.6 mg PO twice daily for 3 months",
                  "pantoprazole 40 mg PO daily while on ibuprofen"],
        followup="cardiology in 2 weeks", consultant="cardiology", ages=(18, 60)),
    Scenario(
        dx="acute gout flare of the right first metatarsophalangeal joint", dx_short="gout flare",
        complaint="right great toe pain",
        symptoms=["severe pain and swelling of the right great toe", "inability to bear weight", "redness over the joint"],
        negatives=["fever", "trauma", "rash", "back pain"],
        exam=[("Extremities", "Exquisitely tender, warm, erythematous right first metatarsophalangeal joint.")],
        labs=["uric acid {f:7.8-11.2} mg/dL", "creatinine {f:1.0-1.6} mg/dL"],
        study="cxr", findings=["No acute cardiopulmonary process."], impression="Normal chest radiograph.",
        ed_treatment="colchicine and prednisone",
        course=["Arthrocentesis showed negatively birefringent needle-shaped crystals and no organisms.",
                "{He} was treated with prednisone and colchicine with marked improvement.",
                "Hydrochlorothiazide was changed to amlodipine given its effect on uric acid."],
        plan=["Prednisone 40 mg daily for 5 days.", "Colchicine 0.6 mg daily.", "Start allopurinol after the flare resolves."],
        new_meds=["prednisone 40 mg PO daily for 4 more days", "colchicine 0.6 mg PO daily"],
        followup="rheumatology in 4 weeks to start urate-lowering therapy", consultant="rheumatology", ages=(40, 85)),
]
# List order is frequency order: common admissions first.
PICK_SCENARIO = Zipf(SCENARIOS, s=0.6)

# Imaging studies: report title, name in running text, technique, and the normal findings a report lists
# for organs the scenario does not involve.
STUDIES = {
    "cxr": ("CHEST RADIOGRAPH, PA AND LATERAL", "chest radiograph", "PA and lateral views of the chest.",
            ["The cardiomediastinal silhouette is within normal limits.", "No pleural effusion or pneumothorax.",
             "Osseous structures are intact.", "No free air under the diaphragm."]),
    "ct_abd": ("CT ABDOMEN AND PELVIS WITH IV CONTRAST", "CT of the abdomen and pelvis", "Axial CT images of the abdomen and pelvis were obtained after intravenous contrast. Coronal and sagittal reformats were reviewed.",
               ["The liver, spleen, pancreas, and adrenal glands are unremarkable.", "The kidneys enhance symmetrically without hydronephrosis.",
                "No bowel obstruction.", "No free air or free fluid.", "The urinary bladder is unremarkable.",
                "Mild atherosclerotic calcification of the abdominal aorta without aneurysm."]),
    "ctpa": ("CT ANGIOGRAPHY OF THE CHEST (PULMONARY EMBOLISM PROTOCOL)", "CT pulmonary angiography", "Helical CT of the chest with IV contrast timed for the pulmonary arteries.",
             ["The thoracic aorta is normal in caliber.", "No pericardial effusion.", "No consolidation or suspicious pulmonary nodule.",
              "No mediastinal or hilar lymphadenopathy."]),
    "ct_head": ("CT HEAD WITHOUT CONTRAST", "noncontrast CT of the head", "Axial noncontrast images of the head.",
                ["Gray-white matter differentiation is preserved.", "The ventricles are normal in size.", "The visualized paranasal sinuses and mastoid air cells are clear."]),
    "mri_brain": ("MRI BRAIN WITH AND WITHOUT GADOLINIUM", "MRI of the brain", "Multiplanar, multisequence MRI of the brain before and after gadolinium.",
                  ["No abnormal enhancement.", "Major intracranial flow voids are preserved.", "No extra-axial collection."]),
    "us_ruq": ("ULTRASOUND ABDOMEN, RIGHT UPPER QUADRANT", "right upper quadrant ultrasound", "Grayscale and color Doppler images of the right upper quadrant.",
               ["The pancreas is partially obscured by bowel gas.", "The right kidney is normal in size without hydronephrosis.",
                "No intrahepatic biliary ductal dilation."]),
    "us_renal": ("ULTRASOUND KIDNEYS AND BLADDER", "renal ultrasound", "Grayscale and color Doppler sonography of the kidneys and bladder.",
                 ["The right kidney measures {f:9.8-11.9} cm and the left kidney {f:10.0-12.1} cm.", "No renal calculi or masses.",
                  "The bladder is normally distended."]),
    "echo": ("TRANSTHORACIC ECHOCARDIOGRAM", "transthoracic echocardiogram", "Complete two-dimensional transthoracic echocardiogram with color flow and spectral Doppler.",
             ["Right ventricular size and systolic function are normal.", "The aortic valve is trileaflet without stenosis.",
              "Estimated right ventricular systolic pressure {n:24-38} mmHg.", "The inferior vena cava is normal in size with normal respiratory variation.",
              "Grade I diastolic dysfunction."]),
    "duplex": ("VENOUS DUPLEX ULTRASOUND, LEFT LOWER EXTREMITY", "venous duplex ultrasound", "Grayscale, color, and spectral Doppler evaluation with compression.",
               ["Normal phasic flow in the common femoral vein.", "The calf veins are patent where visualized."]),
    "mri_foot": ("MRI RIGHT FOOT WITHOUT AND WITH CONTRAST", "MRI of the right foot", "Multiplanar MRI of the right forefoot before and after gadolinium.",
                 ["No fracture.", "The remaining metatarsals and phalanges show normal marrow signal.", "Tendons are intact."]),
}

# Incidental findings a report may add, ordered by frequency: (study keys, finding, impression item).
INCIDENTALS = [
    (("ct_abd", "us_ruq"), "Diffuse hepatic steatosis.", "Hepatic steatosis."),
    (("ct_abd", "us_renal"), "Simple cortical cyst in the {pick:left|right} kidney measuring {f:1.2-3.5} cm.", "Simple renal cyst; no follow-up imaging is needed."),
    (("ct_abd",), "Sigmoid diverticulosis without diverticulitis.", "Diverticulosis."),
    (("cxr", "ctpa"), "Mild degenerative changes of the thoracic spine.", "Degenerative changes of the thoracic spine."),
    (("ctpa",), "{n:4-6} mm solid nodule in the {pick:right upper|left lower|right middle} lobe.", "Indeterminate pulmonary nodule; follow-up per Fleischner Society guidelines."),
    (("ct_abd",), "Cholelithiasis without gallbladder wall thickening.", "Cholelithiasis without evidence of cholecystitis."),
    (("ct_head", "mri_brain"), "Mucosal thickening in the maxillary sinuses.", "Mild paranasal sinus disease."),
    (("ct_abd", "us_renal"), "Nonobstructing {n:2-5} mm calculus in the {pick:left|right} lower pole.", "Nonobstructing nephrolithiasis."),
    (("echo",), "Mild tricuspid regurgitation.", "Mild tricuspid regurgitation."),
    (("ct_abd",), "Small fat-containing umbilical hernia.", "Small umbilical hernia."),
    (("ct_abd", "ctpa"), "Mildly enlarged {pick:mesenteric|periportal|right hilar} lymph node measuring {f:1.0-1.4} cm in short axis.", "Borderline lymphadenopathy, likely reactive."),
    (("ct_abd",), "{n:1-2} cm left adrenal nodule with attenuation of {n:2-9} Hounsfield units, consistent with adenoma.", "Left adrenal adenoma."),
]
PICK_INCIDENTAL = Zipf(INCIDENTALS)

# Surgical pathology specimens, by frequency: (specimen, history, gross, microscopic, diagnosis).
# {size} and {cores} are drawn once per report, so the gross description and the diagnosis agree.
SPECIMENS = Zipf([
    ("Gallbladder, laparoscopic cholecystectomy", "Right upper quadrant pain, cholelithiasis.",
     "Received fresh is an opened gallbladder measuring {f:6.5-9.8} x {f:2.5-4.0} x {f:1.5-3.0} cm. The serosa is tan-pink and smooth. The wall measures up to {f:0.3-0.7} cm. Multiple yellow-green faceted stones are present, aggregating {f:1.5-3.5} cm.",
     "Sections show gallbladder wall with mucosal ulceration, transmural neutrophilic infiltrate, edema, and Rokitansky-Aschoff sinuses. No dysplasia.",
     "Acute and chronic cholecystitis with cholelithiasis. Negative for dysplasia and malignancy."),
    ("Colon, sigmoid, polypectomy", "Screening colonoscopy.",
     "Received in formalin are {n:2-4} tan polypoid fragments measuring {f:0.3-0.9} cm in aggregate. Entirely submitted in one cassette.",
     "Sections show colonic mucosa with tubular architecture and low-grade cytologic atypia of the surface epithelium.",
     "Tubular adenoma. Negative for high-grade dysplasia."),
    ("Appendix, laparoscopic appendectomy", "Right lower quadrant pain, clinical appendicitis.",
     "Received in formalin is an appendix measuring {f:5.5-8.5} cm in length and up to {f:0.9-1.5} cm in diameter. The serosa is dull with fibrinopurulent exudate. An appendicolith is present in the lumen.",
     "Sections show transmural neutrophilic infiltration with mucosal ulceration and periappendiceal serositis.",
     "Acute suppurative appendicitis with periappendicitis. No perforation identified."),
    ("Skin, left forearm, shave biopsy", "Pearly papule, rule out basal cell carcinoma.",
     "Received in formalin is a tan-white shave of skin measuring {f:0.4-0.9} x {f:0.3-0.7} cm. The specimen is inked and bisected.",
     "Sections show nests of basaloid cells with peripheral palisading and retraction artifact arising from the epidermis.",
     "Basal cell carcinoma, nodular type. Peripheral margin involved; deep margin free."),
    ("Lymph node, left cervical, excisional biopsy", "Diffuse lymphadenopathy, weight loss.",
     "Received fresh is a tan-pink lymph node measuring {f:2.2-3.8} x {f:1.5-2.5} cm. Touch preparations were made and tissue was submitted for flow cytometry.",
     "Sections show effacement of nodal architecture by sheets of large atypical lymphoid cells. Immunohistochemistry shows the cells are CD20 and BCL6 positive with a Ki-67 proliferation index of approximately {n:60-90}%.",
     "Diffuse large B-cell lymphoma. See comment."),
    ("Liver, core needle biopsy", "Elevated transaminases, hepatic steatosis on imaging.",
     "Received in formalin are {n:2-3} tan-brown cores of tissue measuring {f:1.0-2.2} cm in aggregate length.",
     "Sections show macrovesicular steatosis involving approximately {n:30-60}% of hepatocytes with ballooning degeneration, lobular inflammation, and perisinusoidal fibrosis on trichrome stain.",
     "Steatohepatitis with perisinusoidal and periportal fibrosis (stage 2). Iron stain negative."),
    ("Thyroid, left lobectomy", "Left thyroid nodule, Bethesda category IV on fine-needle aspiration.",
     "Received fresh is a thyroid lobe weighing {n:9-22} g. Serial sectioning reveals a {size} cm well-circumscribed tan nodule.",
     "Sections show a follicular-patterned lesion with papillae, nuclear enlargement, grooves, and intranuclear pseudoinclusions.",
     "Papillary thyroid carcinoma, classic variant, {size} cm, confined to the thyroid. Margins negative."),
    ("Bone marrow, aspirate and core biopsy", "Pancytopenia, methotrexate exposure.",
     "Received are a {f:1.0-1.8} cm core biopsy and aspirate smears.",
     "The core biopsy shows a hypocellular marrow for age with megaloblastoid erythroid changes. No increase in blasts. No granulomas or infiltrative process.",
     "Hypocellular marrow with megaloblastoid changes, consistent with drug effect. No evidence of a myelodysplastic neoplasm."),
    ("Prostate, needle core biopsies (12 cores)", "Elevated PSA of {f:5.2-11.8} ng/mL.",
     "Received in formalin are 12 separately labeled cores ranging from {f:0.8-1.2} to {f:1.3-1.9} cm.",
     "Sections show infiltrating small glands with prominent nucleoli and absent basal cells in {cores} of 12 cores.",
     "Prostatic adenocarcinoma, Gleason score 3+4=7 (Grade Group 2), involving {cores} of 12 cores. No perineural invasion."),
    ("Bone, right fifth metatarsal head, partial ray amputation", "Diabetic foot ulcer, osteomyelitis on MRI.",
     "Received in formalin is a segment of bone and overlying skin measuring {f:3.0-5.5} cm with a {f:1.0-2.5} cm ulcer.",
     "Sections show bone with necrotic trabeculae, marrow fibrosis, and acute inflammation. The proximal bone margin shows viable bone without inflammation.",
     "Acute osteomyelitis. Proximal bone margin negative for osteomyelitis."),
    ("Kidney, left, partial nephrectomy", "Enhancing left renal mass.",
     "Received fresh is a partial nephrectomy specimen containing a {size} cm golden-yellow well-circumscribed mass.",
     "Sections show nests of cells with clear cytoplasm and a delicate vascular network. WHO/ISUP nucleolar grade 2.",
     "Clear cell renal cell carcinoma, {size} cm, WHO/ISUP grade 2. Margins negative."),
])

# Problem-based lines for chronic conditions, used in hospital courses, daily plans and clinic visits.
CHRONIC_PLANS = {
    "hypertension": ["Blood pressure {bp} today; {pick:continue home regimen and recheck at the next visit|review home readings and adjust if consistently above 130/80}.",
                     "Home antihypertensives were {pick:continued|held for soft blood pressures and resumed at discharge}."],
    "hyperlipidemia": ["Continue statin; LDL cholesterol {n:62-148} mg/dL on the last lipid panel.",
                       "Statin continued; goal LDL below 70 mg/dL given cardiovascular risk."],
    "type 2 diabetes mellitus": ["Metformin held while inpatient; blood glucose managed with basal insulin and a correction scale.",
                                 "Hemoglobin A1c {f:6.4-9.8}%; {pick:continue current regimen|start empagliflozin 10 mg daily|increase insulin glargine by 2 units}.",
                                 "Annual diabetic eye examination and urine albumin-to-creatinine ratio are due."],
    "coronary artery disease": ["No anginal symptoms; continue aspirin, statin, and beta-blocker.",
                                "Stable coronary artery disease status post stent placement in {n:2008-2021}; continue secondary prevention."],
    "gastroesophageal reflux disease": ["Gastroesophageal reflux well controlled on a proton pump inhibitor; continue pantoprazole.",
                                        "Continue omeprazole; counseled on avoiding late meals."],
    "hypothyroidism": ["TSH {f:0.8-4.2} mIU/L; continue levothyroxine at the current dose.",
                       "Levothyroxine continued; recheck TSH in 6-8 weeks after the dose change."],
    "atrial fibrillation": ["Rate controlled; anticoagulation {pick:continued|held for procedure, to resume in 48 hours}.",
                            "CHA2DS2-VASc score {n:2-6}; continue apixaban and metoprolol."],
    "chronic kidney disease stage 3": ["Creatinine at baseline of {f:1.3-1.9} mg/dL; medications renally dosed, avoid nephrotoxins.",
                                       "eGFR {n:34-58} mL/min/1.73 m2; continue to avoid NSAIDs and monitor potassium."],
    "obesity": ["BMI {f:30.5-41.8} kg/m2; discussed diet and physical activity, referred to the weight management program."],
    "chronic obstructive pulmonary disease": ["COPD at baseline; continue tiotropium and albuterol as needed.",
                                              "No exacerbation; encouraged pulmonary rehabilitation and confirmed vaccinations are current."],
    "major depressive disorder": ["Mood stable; continue sertraline. PHQ-9 score {n:3-9}.",
                                  "Depression stable on escitalopram; denies suicidal ideation."],
    "heart failure with reduced ejection fraction": ["Euvolemic on exam; continue carvedilol, spironolactone, and furosemide.",
                                                     "Heart failure with ejection fraction {n:25-35}%; continue guideline-directed medical therapy."],
    "obstructive sleep apnea on CPAP": ["Continue nightly CPAP; patient brought home machine."],
    "benign prostatic hyperplasia": ["Continue tamsulosin; no urinary retention. Post-void residual {n:30-120} mL."],
    "iron deficiency anemia": ["Hemoglobin stable at {f:9.8-11.6} g/dL; continue oral iron. Ferritin {n:8-30} ng/mL."],
    "rheumatoid arthritis": ["Continue methotrexate once weekly with folic acid; CBC and liver enzymes every 3 months.",
                             "Rheumatoid arthritis without active synovitis; continue hydroxychloroquine with annual retinal screening."],
    "gout": ["No recent flares; continue allopurinol with uric acid goal below 6 mg/dL."],
    "osteoporosis": ["Continue alendronate weekly plus calcium and vitamin D; DEXA scan due in {pick:1 year|2 years}."],
    "peripheral neuropathy": ["Neuropathic pain controlled on gabapentin; daily foot checks reviewed."],
    "asthma": ["Asthma well controlled; continue controller inhaler and albuterol as needed."],
    "history of deep vein thrombosis": ["Continue anticoagulation; reassess duration at the next hematology visit."],
    "prior cerebrovascular accident": ["Continue antiplatelet therapy and statin for secondary stroke prevention."],
    "diabetic nephropathy": ["Urine albumin-to-creatinine ratio {n:60-420} mg/g; continue losartan and empagliflozin for renal protection."],
    "chronic thrombocytopenia": ["Platelets stable at {n:88-135} K/uL; chronic mild thrombocytopenia without bleeding, followed by hematology.",
                                 "Thrombocytopenia at baseline; enoxaparin held, sequential compression devices for prophylaxis."],
    "hepatic steatosis": ["Hepatic steatosis; counseled on weight loss and alcohol avoidance; hepatitis serologies negative."],
}


# A patient with two conditions that share a drug class takes one drug of it, not two statins.
DRUG_CLASS = {
    "atorvastatin": "statin", "rosuvastatin": "statin", "simvastatin": "statin",
    "metoprolol succinate": "beta-blocker", "metoprolol tartrate": "beta-blocker", "carvedilol": "beta-blocker",
    "apixaban": "anticoagulant", "rivaroxaban": "anticoagulant", "warfarin": "anticoagulant",
    "pantoprazole": "acid", "omeprazole": "acid", "famotidine": "acid",
    "lisinopril": "ras", "losartan": "ras", "sertraline": "ssri", "escitalopram": "ssri",
    "empagliflozin": "sglt2", "dapagliflozin": "sglt2", "diltiazem": "rate",
}


def allergy(rng: random.Random, ctx: dict) -> str:
    """An allergy line that does not name a drug the patient takes."""
    while True:
        line = ALLERGIES(rng)
        if not any(drug in line.lower() for drug in ctx["med_names"]):
            return line


def chronic_plan(rng: random.Random, condition: str) -> str:
    options = CHRONIC_PLANS.get(condition)
    if options:
        return rng.choice(options)
    return "Stable; continue the home regimen."


def format_med(rng: random.Random, name: str, style: str) -> str:
    """``"atorvastatin" -> "atorvastatin 40 mg PO nightly"`` (route spelled out in the "long" style)."""
    doses, unit, frequencies = MEDS[name]
    frequency = rng.choice(frequencies)
    if name.startswith("insulin") or "subcutaneously" in frequency:
        route = "subcutaneously" if "subcutaneously" not in frequency else ""
    elif "inhal" in frequency or "puff" in frequency:
        route = ""
    else:
        route = "by mouth" if style == "long" else "PO"
    text = f"{name} {rng.choice(doses)} {unit} {route} {frequency}"
    return " ".join(text.split())


def medical_context(rng: random.Random, scenario: Scenario) -> dict:
    """Patient, visit and wording choices that every sentence of one note must agree on."""
    female = rng.random() < 0.5
    age = str(rng.randint(*scenario.ages))
    symptoms = rng.sample(scenario.symptoms, len(scenario.symptoms))
    negatives = rng.sample(scenario.negatives, len(scenario.negatives))
    symptoms += symptoms[:3]  # short lists repeat rather than fail
    exclude = unsuitable({"he": "she" if female else "he", "age": age})
    pmh = PICK_COMORBIDITY.sample(rng, rng.randint(1, 5 if int(age) >= 50 else 2), exclude=exclude)
    med_style = rng.choice(["short", "short", "long"])
    home_meds: list[str] = []
    for condition in pmh:
        for med in Zipf(COMORBIDITY_MEDS[condition]).sample(rng, rng.randint(1, 2)) if COMORBIDITY_MEDS[condition] else []:
            classes = {DRUG_CLASS.get(m, m) for m in home_meds}
            if DRUG_CLASS.get(med, med) not in classes:
                home_meds.append(med)
    admitted = random_date(rng)
    discharged = admitted + datetime.timedelta(days=rng.randint(2, 7))
    date_format = rng.choice(["%m/%d/%Y", "%Y-%m-%d", "%m/%d/%Y"])
    celsius = rng.uniform(*scenario.temp_c)
    temp = f"{celsius:.1f} C" if rng.random() < 0.5 else f"{celsius * 9 / 5 + 32:.1f} F"
    spo2 = rng.randint(*scenario.spo2)
    return {
        "he": "she" if female else "he", "his": "her" if female else "his", "him": "her" if female else "him",
        "man": "woman" if female else "man", "mr": "Ms." if female else "Mr.",
        "surname": surname(rng), "doctor": f"Dr. {surname(rng)}",
        "age": age, "a_age": ("an " if age.startswith("8") or age in ("11", "18") else "a ") + age, "mrn": str(rng.randint(10_000_000, 99_999_999)),
        "dx": scenario.dx, "dx_short": scenario.dx_short, "cc": scenario.complaint,
        "sym1": symptoms[0], "sym2": symptoms[1], "sym3": symptoms[2],
        "neg1": negatives[0], "neg2": negatives[1], "neg3": negatives[2],
        "pmh": pmh, "pmh_list": join_list(pmh), "home_meds": [format_med(rng, m, med_style) for m in home_meds],
        "med_names": home_meds, "med_style": med_style,
        "onset": uniform(["{n:2-5} days ago", "yesterday evening", "the morning of admission", "about a week ago",
                          "{n:2-3} weeks ago", "two nights ago"]),
        "duration": uniform(["{n:2-5} days", "1 week", "several hours", "{n:2-3} weeks", "one day"]),
        "bp": f"{rng.randint(96, 172)}/{rng.randint(56, 98)}", "hr": str(rng.randint(*scenario.heart_rate)),
        "rr": str(rng.randint(14, 26)), "temp": temp, "spo2": str(spo2),
        "o2": "room air" if spo2 >= 93 else f"{rng.randint(2, 4)} L nasal cannula",
        "admitted": admitted.strftime(date_format), "discharged": discharged.strftime(date_format),
        "visit_date": discharged.strftime(date_format), "prior_date": (admitted - datetime.timedelta(days=rng.randint(30, 900))).strftime(date_format),
        "hospital_day": str(rng.randint(2, 6)),
        "smoker": SMOKER,
        "caps": rng.random() < 0.6,  # upper-case section headings, as many EHR templates print them
        "unit": scenario.unit, "ed_treatment": scenario.ed_treatment,
        "consultant": scenario.consultant, "followup": scenario.followup,
    }


def heading(ctx: dict, title: str) -> str:
    return (title.upper() if ctx["caps"] else title) + ":"


def numbered(lines: list[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))




def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


HPI_OPENERS = [
    "{Mr} {surname} is {a_age}-year-old {man} with a history of {pmh_list} who presents with {duration} of {sym1}.",
    "The patient is {a_age}-year-old {man} with a past medical history significant for {pmh_list} who was admitted for {dx}.",
    "{Age}-year-old {man} with {pmh_list} presenting with {sym1} and {sym2}.",
    "This is {a_age}-year-old {man} with {pmh_list} who was brought to the emergency department by {pick:family|ambulance|a friend|a coworker} for {cc}.",
    "{Mr} {surname}, {a_age}-year-old {man} with {pmh_list}, was in {his} usual state of health until {onset}, when {he} developed {sym1}.",
    "Patient is {a_age} y/o {man} with PMH of {pmh_list} who presented to the ED c/o {cc} x {duration}.",
]
HPI_DETAILS = [
    "{He} reports {sym1} that began {onset} and has progressively worsened.",
    "{He} also endorses {sym2} and {sym3}.",
    "{He} denies {neg1}, {neg2}, and {neg3}.",
    "Review of systems is otherwise notable for {sym2}; {he} specifically denies {neg1} and {neg2}.",
    "Symptoms were not relieved by {pick:rest|over-the-counter acetaminophen|ibuprofen|antacids} and prompted {him} to seek care.",
    "Of note, {he} was {pick:seen in clinic|discharged from this hospital|evaluated at an outside facility} {n:2-8} weeks ago for {pick:similar symptoms|an unrelated issue|a medication adjustment}.",
    "{His} family notes that {he} has been {pick:more tired than usual|eating less|less active} over the past {duration}.",
]
HPI_ED = [
    "In the emergency department, vital signs were notable for blood pressure {bp}, heart rate {hr}, temperature {temp}, and oxygen saturation {spo2}% on {o2}.",
    "On arrival to the ED, BP was {bp}, HR {hr}, RR {rr}, SpO2 {spo2}% on {o2}.",
    "Vitals in triage: T {temp}, BP {bp}, HR {hr}, RR {rr}, O2 sat {spo2}% on {o2}.",
]
HPI_DISPO = [
    "{He} received {ed_treatment} and was admitted to {unit} for further management.",
    "{He} was given {ed_treatment} and admitted for {dx_short}.",
    "After {ed_treatment}, the hospitalist service was asked to admit.",
]


def hpi(rng: random.Random, ctx: dict, scenario: Scenario, details: int) -> str:
    lab1, lab2 = (rng.sample(scenario.labs, len(scenario.labs)) * 2)[:2]
    sentences = [rng.choice(HPI_OPENERS)]
    sentences += rng.sample(HPI_DETAILS, details)
    sentences.append(rng.choice(HPI_ED))
    sentences.append(rng.choice([f"Initial laboratory studies showed {lab1} and {lab2}.",
                                 f"Labs were significant for {lab1} and {lab2}.",
                                 f"Pertinent labs: {lab1}; {lab2}."]))
    prose = capitalize(STUDIES[scenario.study][1])
    sentences.append(rng.choice([f"{prose}: {rng.choice(scenario.findings)}", f"Imaging: {scenario.impression}",
                                 f"{prose} was read as follows: {lower_first(scenario.impression)}"]))
    sentences.append(rng.choice(HPI_DISPO))
    return fill(" ".join(sentences), ctx, rng)


def exam_block(rng: random.Random, ctx: dict, scenario: Scenario, systems: int) -> str:
    abnormal = dict(scenario.exam)
    chosen = [EXAM_NORMAL[0]] + sorted(rng.sample(EXAM_NORMAL[1:], systems - 1), key=EXAM_NORMAL.index)
    names = [name for name, _ in chosen]
    for name in abnormal:  # abnormal findings always make it into the exam
        if name not in names:
            chosen.append((name, []))
            names.append(name)
    lines = [f"{name}: {abnormal[name] if name in abnormal else rng.choice(options)}" for name, options in chosen]
    return fill("\n".join(lines), ctx, rng)


def vitals_line(ctx: dict) -> str:
    return f"T {ctx['temp']}, BP {ctx['bp']}, HR {ctx['hr']}, RR {ctx['rr']}, SpO2 {ctx['spo2']}% on {ctx['o2']}"


def labs_line(rng: random.Random, ctx: dict, scenario: Scenario, routine: int) -> str:
    items = rng.sample(LAB_PANEL, routine) + rng.sample(scenario.labs, min(2, len(scenario.labs)))
    return fill(", ".join(items) + ".", ctx, rng)


def discharge_summary(rng: random.Random, ctx: dict, scenario: Scenario) -> str:
    course = list(scenario.course[: rng.randint(2, len(scenario.course))])
    course += [chronic_plan(rng, c) for c in ctx["pmh"][: rng.randint(0, 2)]]
    meds = [f"{m} - {rng.choice(['continue', 'continue', 'unchanged'])}" for m in ctx["home_meds"][:5]]
    meds += [f"{m} (NEW)" for m in scenario.new_meds]
    parts = [
        "DISCHARGE SUMMARY",
        f"Patient: {ctx['mr']} {ctx['surname']}    MRN: {ctx['mrn']}",
        f"Admission date: {ctx['admitted']}    Discharge date: {ctx['discharged']}",
        f"Attending: {ctx['doctor']}, MD",
        f"{heading(ctx, 'Principal diagnosis')} {capitalize(scenario.dx)}",
        f"{heading(ctx, 'Secondary diagnoses')} {capitalize(ctx['pmh_list'])}",
        f"{heading(ctx, 'Procedures')} {capitalize(scenario.procedure) if scenario.procedure else 'None'}",
        heading(ctx, "History of present illness"), hpi(rng, ctx, scenario, rng.randint(1, 2)),
        heading(ctx, "Hospital course"), fill(" ".join(course), ctx, rng),
        heading(ctx, "Discharge medications"), numbered(meds) if meds else "None.",
        fill(f"{heading(ctx, 'Condition at discharge')} {{pick:Stable|Good|Fair, improved}}. "
             f"Discharged to {DISPOSITION(rng)}.", ctx, rng),
        fill(f"{heading(ctx, 'Follow-up')} {{Followup}}. " + rng.choice(RETURN_PRECAUTIONS), ctx, rng),
    ]
    return "\n".join(parts)


PROGRESS_SUBJECTIVE = [
    "No acute events overnight.", "{He} reports improvement in {sym1}.", "Slept well.",
    "Tolerating {pick:a regular diet|clear liquids|a cardiac diet|a diabetic diet} without nausea.",
    "Pain {n:1-6}/10, controlled with current regimen.", "Ambulated in the hallway with physical therapy.",
    "Still endorses some {sym2}, though less than on admission.", "Overnight, {he} required {pick:one dose of|no} as-needed analgesia.",
]
PROGRESS_STATUS = uniform(["improving", "clinically improving", "stable", "slowly improving", "improved, approaching baseline"])
INPATIENT_ROUTINE = [
    "DVT prophylaxis: {dvt_prophylaxis}.",
    "Diet: {pick:regular|cardiac|consistent carbohydrate|NPO after midnight|advance as tolerated}.",
    "Code status: {pick:Full code|Full code|DNR/DNI, confirmed with patient}.",
    "Disposition: anticipate discharge {pick:tomorrow|in 1-2 days|once tolerating oral intake|pending PT evaluation}.",
]


def progress_note(rng: random.Random, ctx: dict, scenario: Scenario) -> str:
    subjective = rng.sample(PROGRESS_SUBJECTIVE, rng.randint(2, 4))
    problems = [f"# {capitalize(scenario.dx)} - {{progress_status}}.\n" + "\n".join(
        f"- {item}" for item in rng.sample(scenario.plan, min(len(scenario.plan), rng.randint(2, 3))))]
    problems += [f"# {capitalize(c)}: {chronic_plan(rng, c)}" for c in ctx["pmh"][: rng.randint(1, 3)]]
    parts = [
        rng.choice(["PROGRESS NOTE", "HOSPITAL MEDICINE PROGRESS NOTE", "Daily Progress Note"]) + " - Hospital Day {hospital_day}",
        heading(ctx, "Subjective"), " ".join(subjective),
        heading(ctx, "Objective"), "Vitals: " + vitals_line(ctx),
        exam_block(rng, ctx, scenario, rng.randint(3, 5)),
        "Labs: " + labs_line(rng, ctx, scenario, rng.randint(3, 6)),
        heading(ctx, "Assessment and plan"),
        "{Age}-year-old {man} with {pmh_list} admitted with {dx}, now hospital day {hospital_day}.",
        "\n".join(problems), "\n".join(rng.sample(INPATIENT_ROUTINE, rng.randint(2, 4))),
    ]
    prophylaxis = ("on therapeutic anticoagulation" if scenario.anticoagulated else
                   "{pick:enoxaparin 40 mg subcutaneously daily|heparin 5,000 units subcutaneously every 8 hours|sequential compression devices}")
    ctx = {**ctx, "progress_status": PROGRESS_STATUS, "dvt_prophylaxis": prophylaxis}
    return fill("\n".join(parts), ctx, rng)


CONSULT_CLOSERS = [
    "Thank you for this consult. We will continue to follow along with you.",
    "We will follow daily. Please page the {consultant} fellow with questions.",
    "Discussed with the primary team. We will sign off; please re-consult with any questions.",
    "Recommendations were discussed with the attending of record and with the patient at bedside.",
]


def consult_note(rng: random.Random, ctx: dict, scenario: Scenario) -> str:
    meds = "; ".join(ctx["home_meds"]) if ctx["home_meds"] else "No regular medications."
    recs = rng.sample(scenario.plan, min(len(scenario.plan), rng.randint(2, 4)))
    if ctx["pmh"] and rng.random() < 0.5:
        recs.append(chronic_plan(rng, ctx["pmh"][0]))
    parts = [
        f"{scenario.consultant.upper()} CONSULTATION NOTE",
        f"Date of service: {ctx['admitted']}",
        f"Requesting physician: Dr. {surname(rng)}, {rng.choice(['Hospital Medicine', 'Emergency Medicine', 'General Surgery', 'Internal Medicine'])}",
        f"{heading(ctx, 'Reason for consultation')} {rng.choice(['Evaluation and management of', 'Recommendations regarding', 'Assistance with'])} {scenario.dx_short}.",
        heading(ctx, "History of present illness"), hpi(rng, ctx, scenario, rng.randint(1, 2)),
        f"{heading(ctx, 'Past medical history')} {capitalize(ctx['pmh_list'])}.",
        f"{heading(ctx, 'Past surgical history')} {capitalize(join_list(SURGICAL_HISTORY.sample(rng, rng.randint(1, 3), exclude=unsuitable(ctx))))}.",
        f"{heading(ctx, 'Medications')} {meds}",
        f"{heading(ctx, 'Allergies')} {allergy(rng, ctx)}",
        f"{heading(ctx, 'Social history')} {rng.choice(SOCIAL_HISTORY)}",
        f"{heading(ctx, 'Family history')} {FAMILY_HISTORY(rng)}",
        f"{heading(ctx, 'Review of systems')} A complete review of systems was obtained and is negative except as noted in the HPI.",
        heading(ctx, "Physical examination"), "Vitals: " + vitals_line(ctx), exam_block(rng, ctx, scenario, rng.randint(3, 5)),
        heading(ctx, "Assessment"),
        rng.choice(["{Age}-year-old {man} with {pmh_list} who presents with {cc}, with a presentation most consistent with {dx}.",
                    "In summary, this is {a_age}-year-old {man} with {dx}. Signs and symptoms are improving with current therapy.",
                    "{Mr} {surname} has {dx}, complicated by {sym2}."]),
        heading(ctx, "Recommendations"), numbered(recs), rng.choice(CONSULT_CLOSERS),
    ]
    return fill("\n".join(parts), ctx, rng)


RADIOLOGY_INDICATIONS = [
    "{Age}-year-old {man} with {cc}. Evaluate for {dx_short}.",
    "{Cc}, {duration}. History of {pmh_list}.",
    "Rule out {dx_short}.",
    "{Sym1}; concern for {dx_short}.",
]


def radiology_report(rng: random.Random, ctx: dict, scenario: Scenario) -> str:
    study = scenario.study
    title, _, technique, normals = STUDIES[study]
    negative = rng.random() < 0.2  # some studies are ordered and come back normal
    findings = [] if negative else rng.sample(scenario.findings, rng.randint(min(2, len(scenario.findings)), len(scenario.findings)))
    findings += rng.sample(normals, rng.randint(min(2, len(normals)), len(normals)))
    impression = ["No acute abnormality." if negative else scenario.impression]
    incidental = PICK_INCIDENTAL(rng)
    if study in incidental[0] and rng.random() < 0.6:
        findings.append(incidental[1])
        impression.append(incidental[2])
    parts = [
        f"EXAMINATION: {title}", f"DATE: {ctx['admitted']}",
        f"INDICATION: {rng.choice(RADIOLOGY_INDICATIONS)}",
        "COMPARISON: " + rng.choice(["None.", "None available.", "{prior_date}.", "Prior study dated {prior_date}."]),
        f"TECHNIQUE: {technique}",
        "FINDINGS:", " ".join(findings),
        "IMPRESSION:", numbered(impression),
        f"Electronically signed by Dr. {surname(rng)}, " + ("MD, Cardiology" if study == "echo" else rng.choice(["MD", "MD, Radiology", "DO"])),
    ]
    return fill("\n".join(parts), ctx, rng)


def pathology_report(rng: random.Random, ctx: dict, scenario: Scenario) -> str:
    specimen, history, gross, microscopic, diagnosis = SPECIMENS(rng)
    sex = "M" if specimen.startswith("Prostate") else ("F" if ctx["he"] == "she" else "M")
    ctx = {**ctx, "size": f"{rng.uniform(1.1, 3.9):.1f}", "cores": str(rng.randint(2, 5))}
    comments = [
        "Clinical correlation is recommended.",
        "The case was reviewed at the departmental consensus conference.",
        "These findings were communicated to Dr. {pick:%s|%s} on {visit_date}." % (surname(rng), surname(rng)),
        "Immunohistochemical stains were performed with appropriate controls.",
        "",
    ]
    parts = [
        "SURGICAL PATHOLOGY REPORT",
        f"Accession number: SP-{rng.randint(19, 24)}-{rng.randint(1000, 39999)}",
        f"Patient: {ctx['surname']}, MRN {ctx['mrn']}    Age/Sex: {ctx['age']}/{sex}",
        f"Date received: {ctx['visit_date']}    Submitting physician: Dr. {surname(rng)}",
        "Intraoperative consultation: " + rng.choice(["None.", "None requested.", "Frozen section diagnosis concordant with the final diagnosis."]),
        f"SPECIMEN: {specimen}", f"CLINICAL HISTORY: {history}",
        "GROSS DESCRIPTION:", gross,
        "" if "submitted" in gross else rng.choice(["Cassette summary: A1-A{n:2-6}, representative sections.",
                                                      "Entirely submitted in cassettes A1-A{n:2-8}.",
                                                      "Representative sections submitted; remainder retained in formalin."]),
        "MICROSCOPIC DESCRIPTION:", microscopic,
        "FINAL DIAGNOSIS:", f"{specimen}:", f"- {diagnosis}",
        rng.choice(comments),
        f"Pathologist: Dr. {surname(rng)}",
    ]
    return fill("\n".join(p for p in parts if p), ctx, rng)


MED_REC_ACTIONS = Zipf([
    "continue", "continue; last dose taken {pick:this morning|last night|yesterday}",
    "HOLD while inpatient; {pick:NPO for procedure|soft blood pressures|acute kidney injury|risk of bleeding}",
    "dose changed, see new prescription", "discontinue; {pick:not taking for several months per patient|duplicate therapy|possible interaction}",
    "resume at discharge",
])
# (home drugs the comment is about, joined by "+", or "" for any patient; comment).
MED_REC_COMMENTS = [
    ("apixaban+aspirin", "Patient is on both apixaban and aspirin; discussed increased bleeding risk with the primary team, who will reassess the need for aspirin."),
    ("atorvastatin", "Atorvastatin was increased to high intensity for secondary prevention."),
    ("levothyroxine", "Patient reports taking levothyroxine with coffee; counseled to take it on an empty stomach 30-60 minutes before breakfast."),
    ("metformin", "Metformin held given creatinine of {f:1.6-2.4} mg/dL; may resume when eGFR is above 45 mL/min/1.73 m2."),
    ("methotrexate", "Methotrexate is dosed once weekly; the weekly schedule was confirmed with the patient and written in the discharge instructions."),
    ("warfarin", "INR {f:1.8-3.4} on admission; warfarin dosing per pharmacy protocol with daily INR."),
    ("insulin glargine", "Insulin pen technique reviewed; patient demonstrated correct use."),
    ("", "No clinically significant drug-drug interactions were identified."),
    ("", "QTc {n:430-495} ms on the most recent ECG; avoid adding QT-prolonging agents such as ondansetron or levofloxacin when possible."),
    ("", "Renal dosing reviewed; estimated creatinine clearance {n:28-58} mL/min."),
    ("", "Patient uses a pill organizer filled weekly by {pick:a daughter|a spouse|the patient}; an updated medication list was provided."),
    ("", "Over-the-counter ibuprofen use identified; advised to avoid NSAIDs given {pick:anticoagulation|chronic kidney disease|heart failure}."),
    ("", "Pharmacy fill history reviewed: last fill of all maintenance medications within 30 days, suggesting adherence."),
]


def medication_reconciliation(rng: random.Random, ctx: dict, scenario: Scenario) -> str:
    home = [f"{m} - {MED_REC_ACTIONS(rng)}" for m in ctx["home_meds"]] or ["No home medications."]
    comments = [text for drugs, text in MED_REC_COMMENTS
                if not drugs or all(drug in ctx["med_names"] for drug in drugs.split("+"))]
    parts = [
        "MEDICATION RECONCILIATION - " + rng.choice(["ADMISSION", "DISCHARGE", "TRANSITION OF CARE"]),
        f"Patient: {ctx['mr']} {ctx['surname']}    MRN: {ctx['mrn']}    Date: {ctx['admitted']}",
        f"Reason for admission: {scenario.dx}.",
        "Sources: " + rng.choice(["patient interview and pharmacy fill history", "patient's spouse and medication bottles",
                                  "outside records and patient interview", "patient and primary care medication list"]) + ".",
        f"{heading(ctx, 'Allergies')} {allergy(rng, ctx)}",
        heading(ctx, "Home medications"), numbered(home),
        heading(ctx, "New medications started this admission"), numbered(scenario.new_meds) if scenario.new_meds else "None.",
        heading(ctx, "Pharmacist comments"), " ".join(rng.sample(comments, min(len(comments), rng.randint(1, 3)))),
        f"Reconciled by {person_name(rng)}, PharmD",
    ]
    return fill("\n".join(parts), ctx, rng)


CLINIC_INTERVAL = [
    "{Mr} {surname} returns for routine follow-up of {pmh_list}.",
    "{He} was recently hospitalized on {admitted} for {dx} and reports that {he} is recovering well at home.",
    "{He} reports good adherence to medications and no side effects.",
    "Home blood pressure readings have been in the {pick:120s|130s|140s} systolic.",
    "{He} has been walking {n:15-40} minutes most days and has lost {n:2-12} pounds since the last visit.",
    "No chest pain, shortness of breath, or lower extremity edema.",
    "{He} asks about refilling {his} medications and about the recommended vaccines.",
    "{He} denies {neg1} and {neg2} since discharge.",
]


def clinic_note(rng: random.Random, ctx: dict, scenario: Scenario) -> str:
    specialty = rng.choice(["PRIMARY CARE", "INTERNAL MEDICINE", scenario.consultant.upper()])
    problems = [f"{i}. {capitalize(c)}: {chronic_plan(rng, c)}" for i, c in enumerate(ctx["pmh"][:4], 1)]
    problems.append(f"{len(problems) + 1}. {capitalize(scenario.dx_short)}, recent admission: follow up with {scenario.followup}.")
    parts = [
        f"{specialty} CLINIC NOTE", f"Date of visit: {ctx['visit_date']}",
        f"{heading(ctx, 'Chief complaint')} Follow-up visit after hospitalization and for chronic conditions.",
        heading(ctx, "Interval history"), " ".join([CLINIC_INTERVAL[0], CLINIC_INTERVAL[1]] + rng.sample(CLINIC_INTERVAL[2:], rng.randint(2, 4))),
        f"{heading(ctx, 'Medications')} " + ("; ".join(ctx["home_meds"]) or "none") + ".",
        f"{heading(ctx, 'Vitals')} BP {ctx['bp']}, HR {ctx['hr']}, weight {rng.randint(118, 265)} lb.",
        f"{heading(ctx, 'Exam')} " + " ".join(rng.choice(options) for _, options in rng.sample(EXAM_NORMAL, 3)),
        heading(ctx, "Assessment and plan"), "\n".join(problems),
        "Return to clinic in {pick:3 months|4-6 weeks|6 months}, sooner as needed. Health maintenance: {pick:influenza vaccine given today|colonoscopy due next year|pneumococcal vaccine offered and declined|screening labs ordered}.",
    ]
    return fill("\n".join(parts), ctx, rng)


NOTE_TYPES = Zipf([discharge_summary, progress_note, consult_note, radiology_report, medication_reconciliation,
                   clinic_note, pathology_report], s=0.5)


def clinical_note(rng: random.Random) -> str:
    scenario = PICK_SCENARIO(rng)
    build = NOTE_TYPES(rng)
    return build(rng, medical_context(rng, scenario), scenario)


# --------------------------------------------------------------------------------------------------
# Legal: parties and deal terms
# --------------------------------------------------------------------------------------------------

NUMBER_WORDS = {
    1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
    10: "ten", 12: "twelve", 14: "fourteen", 15: "fifteen", 18: "eighteen", 20: "twenty", 24: "twenty-four",
    30: "thirty", 36: "thirty-six", 45: "forty-five", 60: "sixty", 90: "ninety", 120: "one hundred twenty",
    180: "one hundred eighty",
}


def legal_number(n: int, unit: str, adjective: bool = False) -> str:
    """``(30, "day") -> "thirty (30) days"``: contracts spell numbers out and repeat them in digits.

    ``adjective=True`` keeps the unit singular, as in "a twelve (12) month forecast".
    """
    plural = "" if n == 1 or adjective else "s"
    return f"{NUMBER_WORDS[n]} ({n}) {unit}{plural}"


# Made-up company names: invented word + line of business + legal form.
COMPANY_HEADS = ["Alder", "Bram", "Cinder", "Dun", "Ever", "Fern", "Glen", "Hollis", "Iver", "Kest", "Lumin",
                 "Mar", "Nor", "Oak", "Pember", "Quill", "Raven", "Silver", "Thorn", "Umber", "Vale", "Wyn",
                 "Yarrow", "Zen", "Corr", "Brisk", "Tallis", "Orrin"]
COMPANY_TAILS = ["brook", "crest", "field", "gate", "hurst", "light", "mark", "point", "ridge", "stone", "view",
                 "wood", "core", "bridge", "way", "line", "ford", "vale"]
# (line of business, what it sells): the name and the "Products" of a contract agree.
BUSINESSES = [
    ("Medical Devices", "orthopedic implants and surgical instruments"),
    ("Foods", "packaged snack foods and beverages"),
    ("Software", "enterprise workflow software"),
    ("Biosciences", "diagnostic reagents and assay kits"),
    ("Coatings", "industrial coatings and sealants"),
    ("Robotics", "warehouse automation systems"),
    ("Textiles", "technical and performance textiles"),
    ("Nutrition", "dietary supplements and sports nutrition products"),
    ("Energy", "residential solar inverters and battery storage systems"),
    ("Audio", "consumer audio equipment"),
    ("Pharmaceuticals", "generic pharmaceutical products"),
    ("Analytics", "data analytics software"),
    ("Materials", "specialty polymer resins"),
    ("Instruments", "laboratory instruments and consumables"),
    ("Pet Care", "premium pet food and pet care products"),
    ("Networks", "wireless networking equipment"),
]
# (how the preamble describes the entity, name suffix, cities it might sit in).
ENTITY_FORMS = [
    ("a Delaware corporation", "Inc.", ["Wilmington, Delaware 19801", "Austin, Texas 78701", "San Jose, California 95113"]),
    ("a Delaware limited liability company", "LLC", ["Chicago, Illinois 60606", "Denver, Colorado 80202"]),
    ("a New York corporation", "Corp.", ["New York, New York 10017", "Rochester, New York 14604"]),
    ("a California corporation", "Inc.", ["Irvine, California 92618", "San Diego, California 92121"]),
    ("a Texas limited partnership", "L.P.", ["Houston, Texas 77002", "Dallas, Texas 75201"]),
    ("a Massachusetts corporation", "Inc.", ["Boston, Massachusetts 02110", "Cambridge, Massachusetts 02142"]),
    ("a company incorporated in England and Wales (company number {n:10000000-14999999})", "Limited",
     ["London EC2A 4NE, United Kingdom", "Manchester M1 3BE, United Kingdom"]),
    ("a private limited company organized under the laws of the Netherlands", "B.V.", ["Rotterdam, the Netherlands"]),
    ("a limited liability company organized under the laws of Germany", "GmbH", ["Munich, Germany", "Hamburg, Germany"]),
    ("an Ontario corporation", "Inc.", ["Toronto, Ontario M5H 2N2, Canada"]),
]
STREETS = ["Commerce", "Harbor", "Industrial", "Lakeview", "Meridian", "Park", "Riverside", "Summit", "Technology",
           "Westgate", "Old Mill", "Enterprise"]
# (law, courts, arbitral institution, seat, currency symbol).
LAWS = Zipf([
    ("the State of Delaware", "the state and federal courts located in Wilmington, Delaware", "the American Arbitration Association", "Wilmington, Delaware", "$"),
    ("the State of New York", "the state and federal courts located in the Borough of Manhattan, New York, New York", "the International Centre for Dispute Resolution", "New York, New York", "$"),
    ("the State of California", "the state and federal courts located in Santa Clara County, California", "JAMS", "San Francisco, California", "$"),
    ("England and Wales", "the courts of England and Wales", "the London Court of International Arbitration", "London, England", "£"),
    ("the State of Texas", "the state and federal courts located in Harris County, Texas", "the American Arbitration Association", "Houston, Texas", "$"),
    ("the Commonwealth of Massachusetts", "the state and federal courts located in Suffolk County, Massachusetts", "the American Arbitration Association", "Boston, Massachusetts", "$"),
    ("the Province of Ontario and the federal laws of Canada applicable therein", "the courts of the Province of Ontario", "the ADR Institute of Canada", "Toronto, Ontario", "C$"),
    ("the State of Illinois", "the state and federal courts located in Cook County, Illinois", "the American Arbitration Association", "Chicago, Illinois", "$"),
])
FORCE_MAJEURE_EVENTS = Zipf([
    "acts of God", "fire", "flood", "epidemic or pandemic", "war", "acts of terrorism", "earthquake",
    "civil unrest or riot", "governmental action", "embargoes", "strikes or labor disputes (other than those involving the affected Party's own employees)",
    "failure of public utilities or telecommunications networks", "explosion", "quarantine restrictions", "cyberattacks",
])
SIGNER_TITLES = Zipf(["Chief Executive Officer", "President", "General Counsel", "Chief Financial Officer",
                      "Vice President, Business Development", "Managing Director", "Chief Operating Officer", "Director"])
INCOTERMS = ["FCA {a}'s facility", "EXW {a}'s facility", "DAP {b}'s designated warehouse", "CPT the named port of destination"]


def company(rng: random.Random, british: bool = False) -> dict:
    industry, goods = rng.choice(BUSINESSES)
    forms = [f for f in ENTITY_FORMS if "England" in f[0]] if british else ENTITY_FORMS
    entity, suffix, cities = rng.choice(forms)
    name = f"{rng.choice(COMPANY_HEADS)}{rng.choice(COMPANY_TAILS)} {industry}"
    separator = ", " if suffix in ("Inc.", "LLC", "L.P.") else " "
    address = f"{rng.randint(10, 9800)} {rng.choice(STREETS)} {rng.choice(['Street', 'Avenue', 'Boulevard', 'Parkway', 'Drive', 'Road'])}, {rng.choice(cities)}"
    return {"name": f"{name}{separator}{suffix}", "entity": entity, "address": address, "goods": goods}


# --------------------------------------------------------------------------------------------------
# Legal: clauses
# --------------------------------------------------------------------------------------------------

# A clause is (heading, paragraphs). The first paragraph always appears; later ones are optional and keep
# their order. A paragraph that starts with "^" is printed in capitals, as contracts print disclaimers.

@dataclass
class ContractKind:
    """One kind of agreement: its titles, the two parties' roles and the clauses only it has."""

    titles: list[str]
    roles: list[tuple[str, str]]       # (first party, second party) defined-term pairs to choose from
    recitals: list[str]
    definitions: list[str]
    clauses: list[tuple[str, list[str]]]
    skip_common: tuple[str, ...] = ()  # common clauses this kind replaces with its own
    subject: str = "Products"          # what the party indemnifies against infringement claims
    individual: bool = False           # the second party is a person, not a company


COMMON_DEFINITIONS = [
    '"Affiliate" means, with respect to a Party, any entity that directly or indirectly controls, is controlled by, or is under common control with such Party, where "control" means ownership of more than fifty percent (50%) of the voting securities of such entity.',
    '"Business Day" means any day other than a Saturday, Sunday or day on which commercial banks in {seat} are authorized or required by law to close.',
    '"Intellectual Property Rights" means all patents, copyrights, trademarks, trade secrets, know-how, rights in designs and databases, and all other intellectual property rights, whether registered or unregistered, anywhere in the world.',
    '"Applicable Law" means all laws, statutes, regulations, ordinances, and orders of any governmental authority applicable to a Party or its activities hereunder.',
]

CONTRACT_KINDS = [
    ContractKind(
        titles=["DISTRIBUTION AGREEMENT", "EXCLUSIVE DISTRIBUTION AGREEMENT", "INTERNATIONAL DISTRIBUTOR AGREEMENT"],
        roles=[("Company", "Distributor"), ("Supplier", "Distributor"), ("Manufacturer", "Distributor")],
        recitals=["WHEREAS, {a} is engaged in the design, manufacture and sale of {goods};",
                  "WHEREAS, {b} has experience in the marketing and distribution of similar products and desires to be appointed as a distributor of the Products in the Territory; and",
                  "WHEREAS, {a} is willing to make such appointment on the terms and subject to the conditions set forth herein;"],
        definitions=['"Products" means the {goods} listed in Exhibit A, as such Exhibit may be amended from time to time by written agreement of the Parties.',
                     '"Territory" means {territory}.',
                     '"Trademarks" means the trademarks, trade names and logos of {a} set forth in Exhibit B.',
                     '"Contract Year" means each consecutive twelve (12) month period beginning on the Effective Date or an anniversary thereof.'],
        clauses=[
            ("Appointment", [
                "Subject to the terms and conditions of this Agreement, {a} hereby appoints {b} as its {exclusive} distributor of the Products in the Territory, and {b} hereby accepts such appointment.",
                "{B} shall not, directly or indirectly, market, sell or distribute the Products outside the Territory without the prior written consent of {a}.",
                "Notwithstanding the foregoing, {a} reserves the right to sell the Products directly to the house accounts listed in Schedule 2."]),
            ("Orders and Delivery", [
                "{B} shall submit purchase orders to {a} not less than {lead_time} prior to the requested delivery date. Each purchase order shall be subject to acceptance by {a}, which acceptance shall not be unreasonably withheld.",
                "Unless otherwise agreed in writing, all Products shall be delivered {incoterm} (Incoterms 2020), and title and risk of loss shall pass to {b} upon delivery to the carrier."]),
            ("Prices and Payment", [
                "The prices for the Products shall be as set forth in Exhibit A, which {a} may amend upon not less than {notice} prior written notice to {b}.",
                "{B} shall pay all invoices within {payment} of the date of invoice. Late payments shall bear interest at the rate of one and one-half percent (1.5%) per month or the maximum rate permitted by applicable law, whichever is less."]),
            ("Minimum Purchase Requirements", [
                "During each Contract Year, {b} shall purchase Products having an aggregate net invoice value of not less than {money_large} (the \"Minimum Purchase Requirement\").",
                "If {b} fails to meet the Minimum Purchase Requirement in any Contract Year, {a} may, as its sole and exclusive remedy, convert the appointment hereunder to a non-exclusive appointment upon written notice to {b}."]),
            ("Marketing Obligations", [
                "{B} shall use commercially reasonable efforts to promote, market and sell the Products throughout the Territory and shall maintain a sales organization adequate for that purpose.",
                "{B} shall provide {a} with quarterly reports of sales, inventory levels and rolling twelve (12) month forecasts, in such form as {a} may reasonably request."]),
            ("Trademarks", [
                "{A} hereby grants to {b} a non-exclusive, non-transferable, royalty-free right to use the Trademarks in the Territory during the Term solely in connection with the promotion and sale of the Products. All use of the Trademarks by {b}, and all goodwill arising therefrom, shall inure to the benefit of {a}."]),
            ("Product Warranty and Recalls", [
                "{A} warrants that the Products, at the time of delivery, shall conform to the Specifications and shall be free from defects in materials and workmanship for a period of {warranty} following delivery.",
                "In the event of a recall of any Product, {b} shall cooperate fully with {a} and follow {a}'s reasonable instructions, and {a} shall bear the reasonable out-of-pocket costs thereof unless the recall results from the acts or omissions of {b}."]),
        ]),
    ContractKind(
        titles=["LICENSE AGREEMENT", "PATENT AND TECHNOLOGY LICENSE AGREEMENT", "EXCLUSIVE LICENSE AGREEMENT",
                "PATENT LICENSE AGREEMENT"],
        roles=[("Licensor", "Licensee")],
        recitals=["WHEREAS, {a} owns or controls certain patents, know-how and technology relating to {goods};",
                  "WHEREAS, {b} wishes to obtain a {licence} under such patents and technology to develop and commercialize Licensed Products; and",
                  "WHEREAS, {a} is willing to grant such {licence} on the terms and conditions set forth in this Agreement;"],
        definitions=['"Licensed Patents" means the patents and patent applications listed in Schedule A, together with all continuations, continuations-in-part, divisionals, reissues and foreign counterparts thereof.',
                     '"Licensed Products" means any product the manufacture, use or sale of which would, absent the {licence} granted hereunder, infringe a Valid Claim of the Licensed Patents.',
                     '"Net Sales" means the gross amounts invoiced by {b}, its Affiliates and Sublicensees for sales of Licensed Products to third parties, less customary trade discounts, returns, rebates, and taxes actually paid.',
                     '"Field of Use" means the field of {goods}.',
                     '"Sublicensee" means any third party to whom {b} grants a sublicense under this Agreement.'],
        subject="Licensed Products",
        clauses=[
            ("Grant of {Licence}", [
                "Subject to the terms and conditions of this Agreement, {a} hereby grants to {b} {an_exclusive}, non-transferable, {sublicensable} {licence} under the Licensed Patents to make, have made, use, sell, offer for sale and import Licensed Products in the Field of Use in the Territory during the Term.",
                "{B} may grant sublicenses hereunder only with the prior written consent of {a}. Each sublicense shall be in writing and consistent with the terms of this Agreement, and {b} shall remain responsible for the performance of its Sublicensees thereunder.",
                "All rights not expressly granted to {b} hereunder are reserved by {a}. No implied licenses are granted by this Agreement, whether by implication, estoppel or otherwise."]),
            ("Fees and Royalties", [
                "In consideration of the rights granted hereunder, {b} shall pay to {a} a royalty equal to {royalty} of Net Sales of all Licensed Products.",
                "{B} shall pay an upfront {licence} fee of {money_large} within {payment} following the Effective Date, which fee shall be non-refundable and non-creditable against royalties.",
                "Royalties shall be paid quarterly within {payment} after the end of each calendar quarter, accompanied by a report setting forth in reasonable detail the gross sales, Net Sales and royalties due for such quarter."]),
            ("Records and Audit", [
                "{B} shall keep, and shall cause its Affiliates and Sublicensees to keep, complete and accurate books and records sufficient to verify the royalties payable hereunder for a period of {record_years} following the end of the calendar year to which they pertain.",
                "{A} may, upon not less than {notice} prior written notice, cause an independent certified public accountant to audit such records. If any audit reveals an underpayment exceeding five percent (5%), {b} shall bear the cost of such audit and promptly pay the deficiency with interest."]),
            ("Intellectual Property", [
                "{A} shall retain all right, title and interest in and to the Licensed Patents and the Licensed Technology.",
                "Any Improvements made solely by {b} shall be owned by {b}, and {b} hereby grants to {a} a non-exclusive, royalty-free, perpetual {licence} to use such Improvements for research purposes.",
                "{A} shall have the first right, but not the obligation, to prepare, file, prosecute and maintain the Licensed Patents at its own expense. Each Party shall promptly notify the other of any suspected infringement of the Licensed Patents by a third party."]),
            ("Diligence", [
                "{B} shall use commercially reasonable efforts to develop and commercialize Licensed Products in the Territory and shall provide {a} with a written report on its development activities not less than once per calendar year."]),
        ]),
    ContractKind(
        titles=["NON-DISCLOSURE AGREEMENT", "CONFIDENTIALITY AGREEMENT", "NONDISCLOSURE AGREEMENT"],
        roles=[("Disclosing Party", "Receiving Party"), ("Company", "Recipient")],
        recitals=["WHEREAS, the Parties wish to explore a possible {transaction} (the \"Purpose\");",
                  "WHEREAS, in connection with the Purpose, {a} may disclose to {b} certain confidential and proprietary information; and",
                  "WHEREAS, {b} is willing to receive and hold such information in confidence in accordance with this Agreement;"],
        definitions=['"Confidential Information" means all non-public information, in any form or medium, disclosed by or on behalf of {a} to {b}, whether before or after the Effective Date, including business plans, financial information, customer lists, pricing, trade secrets, know-how, software and technical data, whether or not marked as confidential.',
                     '"Representatives" means the directors, officers, employees, agents, attorneys, accountants and financial advisors of {b} who need to know the Confidential Information for the Purpose.'],
        clauses=[
            ("Confidentiality Obligations", [
                "{B} shall (i) hold the Confidential Information in strict confidence, using at least the same degree of care it uses to protect its own confidential information of a similar nature, but in no event less than reasonable care; (ii) not use the Confidential Information for any purpose other than the Purpose; and (iii) not disclose the Confidential Information to any person other than its Representatives who are bound by obligations of confidentiality no less protective than those set forth herein.",
                "{B} shall be responsible for any breach of this Agreement by any of its Representatives."]),
            ("Exclusions", [
                "Confidential Information shall not include information that {b} can demonstrate by written records (a) is or becomes generally available to the public other than as a result of a disclosure by {b} in breach of this Agreement; (b) was in {b}'s possession on a non-confidential basis prior to disclosure hereunder; (c) is received from a third party not under an obligation of confidentiality; or (d) is independently developed by {b} without use of or reference to the Confidential Information."]),
            ("Compelled Disclosure", [
                "If {b} is required by law, regulation or order of a court of competent jurisdiction to disclose any Confidential Information, {b} shall, to the extent legally permitted, give {a} prompt written notice thereof so that {a} may seek a protective order or other appropriate remedy, and shall disclose only that portion of the Confidential Information that it is legally required to disclose."]),
            ("Return or Destruction", [
                "Upon the written request of {a}, {b} shall promptly return or destroy all Confidential Information and all copies, extracts and summaries thereof, and shall certify such destruction in writing; provided, however, that {b} may retain copies to the extent required by applicable law or by its automatic electronic archiving procedures, which copies shall remain subject to this Agreement."]),
            ("No {Licence}; No Warranty", [
                "Nothing in this Agreement shall be construed as granting to {b} any {licence} or other right under any patent, copyright, trade secret or other intellectual property right of {a}, whether by implication, estoppel or otherwise.",
                "^All Confidential Information is provided \"as is\", and {a} makes no representation or warranty, express or implied, as to its accuracy or completeness."]),
            ("Remedies", [
                "{B} acknowledges that any breach of this Agreement may cause {a} irreparable harm for which monetary damages would be an inadequate remedy, and agrees that {a} shall be entitled to seek equitable relief, including injunction and specific performance, without the necessity of posting bond, in addition to all other remedies available at law or in equity."]),
            ("Term", [
                "The obligations of {b} hereunder shall survive for a period of {conf_years} from the date of the last disclosure of Confidential Information; provided that, with respect to any trade secrets, such obligations shall continue for so long as such information remains a trade secret under applicable law."]),
        ],
        skip_common=("Confidentiality", "Term and Termination", "Insurance", "Indemnification")),
    ContractKind(
        titles=["EMPLOYMENT AGREEMENT", "EXECUTIVE EMPLOYMENT AGREEMENT"],
        roles=[("Company", "Executive"), ("Company", "Employee")],
        recitals=["WHEREAS, {a} desires to employ {b} as its {position}, and {b} desires to accept such employment;",
                  "WHEREAS, {b} will have access to confidential information and goodwill of {a}; and",
                  "WHEREAS, the Parties wish to set forth in writing the terms and conditions of such employment;"],
        definitions=['"Board" means the Board of Directors of {a}.',
                     '"Good Reason" means, without {b}\'s written consent, (i) a material reduction in the Base Salary; (ii) a material diminution in {b}\'s duties or authority; or (iii) a relocation of {b}\'s principal place of work by more than fifty (50) miles.'],
        clauses=[
            ("Position and Duties", [
                "{A} hereby employs {b}, and {b} hereby accepts employment with {a}, as its {position}, reporting to the {reports_to}. {B} shall devote substantially all of {b}'s business time and efforts to the performance of such duties.",
                "{B} may serve on civic or charitable boards, provided such activities do not materially interfere with the performance of {b}'s duties hereunder."]),
            ("Compensation", [
                "{A} shall pay {b} a base salary at the annual rate of {salary} (the \"Base Salary\"), payable in accordance with {a}'s customary payroll practices and subject to applicable withholdings.",
                "{B} shall be eligible to receive an annual performance bonus with a target of {bonus} of the Base Salary, based upon the achievement of performance objectives established by the Board."]),
            ("Benefits", [
                "{B} shall be entitled to participate in all employee benefit plans maintained by {a} for similarly situated employees, subject to the terms thereof, and shall be entitled to {vacation} of paid vacation per calendar year."]),
            ("Termination of Employment", [
                "{B}'s employment may be terminated by {a} at any time with or without Cause, or by {b} with or without Good Reason, upon {notice} prior written notice.",
                "\"Cause\" means (i) {b}'s conviction of, or plea of nolo contendere to, a felony; (ii) {b}'s willful misconduct or gross negligence in the performance of {b}'s duties; or (iii) {b}'s material breach of this Agreement that remains uncured for {cure} after written notice thereof.",
                "If {b}'s employment is terminated by {a} without Cause or by {b} for Good Reason, {a} shall continue to pay the Base Salary for a period of {severance} following the date of termination, subject to {b}'s execution and non-revocation of a general release of claims in favor of {a}."]),
            ("Restrictive Covenants", [
                "During {b}'s employment and for a period of {restricted} thereafter, {b} shall not, directly or indirectly, (a) engage in any business that competes with {a} in any geographic area in which {a} does business, or (b) solicit or induce any employee or customer of {a} to terminate or adversely modify its relationship with {a}.",
                "{B} acknowledges that the restrictions contained in this Section are reasonable and necessary to protect the legitimate interests of {a}, and that {a} would not have entered into this Agreement but for such restrictions."]),
            ("Inventions", [
                "{B} hereby assigns to {a} all right, title and interest in and to any and all inventions, discoveries, works of authorship and improvements conceived or reduced to practice by {b} during the period of employment that relate to the business of {a} (collectively, \"Inventions\"). Such works shall be deemed \"works made for hire\" to the extent permitted by applicable law."]),
        ],
        skip_common=("Term and Termination", "Indemnification", "Insurance", "Relationship of the Parties", "Force Majeure",
                     "Limitation of Liability", "Publicity"),
        individual=True),
    ContractKind(
        titles=["OFFICE LEASE", "LEASE AGREEMENT", "COMMERCIAL LEASE AGREEMENT"],
        roles=[("Landlord", "Tenant")],
        recitals=["WHEREAS, {a} is the owner of the building located at {premises} (the \"Building\");",
                  "WHEREAS, {b} desires to lease a portion of the Building from {a}; and",
                  "WHEREAS, {a} is willing to lease such premises to {b} on the terms and conditions hereinafter set forth;"],
        definitions=['"Commencement Date" means the later of {effective} and the date on which {a} delivers possession of the Premises to {b} with the Landlord Work substantially complete.',
                     '"Operating Expenses" means all costs incurred by {a} in the operation, maintenance and repair of the Building and the Common Areas, excluding capital expenditures and costs reimbursed by insurance.',
                     '"Proportionate Share" means {n:4-38}.{n:0-9} percent, being the ratio of the rentable area of the Premises to the rentable area of the Building.'],
        clauses=[
            ("Premises", [
                "{A} hereby leases to {b}, and {b} hereby leases from {a}, approximately {n:2-40},{n:100-900} rentable square feet on the {pick:second|third|fourth|seventh|eleventh} floor of the Building (the \"Premises\"), together with the non-exclusive right to use the Common Areas."]),
            ("Term", [
                "The term of this Lease shall commence on the Commencement Date and shall expire {lease_term} thereafter, unless sooner terminated in accordance with the terms hereof.",
                "{B} shall have one (1) option to extend the Term for an additional period of five (5) years upon written notice given not less than nine (9) months prior to the expiration of the initial Term, at ninety-five percent (95%) of the then fair market rent."]),
            ("Rent", [
                "{B} shall pay to {a} monthly Base Rent in the amount of {rent}, in advance on the first day of each calendar month, without demand, deduction or setoff. Base Rent shall increase by three percent (3%) on each anniversary of the Commencement Date.",
                "In addition to Base Rent, {b} shall pay its Proportionate Share of Operating Expenses and Real Estate Taxes as Additional Rent, in monthly installments based on {a}'s reasonable estimate thereof."]),
            ("Security Deposit", [
                "Upon execution of this Lease, {b} shall deposit with {a} the sum of {money_small} as security for the faithful performance of {b}'s obligations hereunder. {A} may apply all or any part of the Security Deposit to cure any default by {b}, and {b} shall restore the amount so applied within ten (10) days after demand."]),
            ("Use", [
                "The Premises shall be used solely for general office purposes and for no other purpose without the prior written consent of {a}. {B} shall comply with all laws, ordinances and regulations applicable to its use and occupancy of the Premises."]),
            ("Maintenance and Repairs", [
                "{A} shall maintain in good repair the roof, foundation, structural elements and base building systems of the Building. {B} shall, at its sole cost, keep the interior of the Premises in good order, condition and repair, reasonable wear and tear and casualty excepted."]),
            ("Assignment and Subletting", [
                "{B} shall not assign this Lease or sublet all or any part of the Premises without the prior written consent of {a}, which consent shall not be unreasonably withheld, conditioned or delayed. Any purported assignment or sublease in violation of this Section shall be null and void."]),
            ("Quiet Enjoyment; Holding Over", [
                "So long as {b} is not in default hereunder beyond any applicable notice and cure period, {b} shall peaceably and quietly hold and enjoy the Premises for the Term without hindrance by {a} or any person claiming by, through or under {a}.",
                "If {b} remains in possession of the Premises after the expiration of the Term without the written consent of {a}, such possession shall be as a tenant at sufferance, and {b} shall pay Base Rent at one hundred fifty percent (150%) of the rate in effect immediately prior to such expiration."]),
        ],
        skip_common=("Term and Termination", "Assignment", "Confidentiality", "Publicity", "Limitation of Liability",
                     "Indemnification")),
    ContractKind(
        titles=["SUPPLY AGREEMENT", "MANUFACTURING AND SUPPLY AGREEMENT", "MASTER SUPPLY AGREEMENT"],
        roles=[("Supplier", "Purchaser"), ("Supplier", "Buyer"), ("Manufacturer", "Customer")],
        recitals=["WHEREAS, {a} manufactures {goods};",
                  "WHEREAS, {b} wishes to purchase such products from {a} for incorporation into its own products and for resale; and",
                  "WHEREAS, {a} is willing to manufacture and supply such products to {b} in accordance with the terms of this Agreement;"],
        definitions=['"Products" means the {goods} described in Schedule 1, manufactured in accordance with the Specifications.',
                     '"Specifications" means the specifications for the Products set forth in Schedule 2, as amended from time to time by written agreement of the Parties.',
                     '"Purchase Order" means a written order for Products issued by {b} to {a} in accordance with this Agreement.',
                     '"cGMP" means current good manufacturing practices as required by applicable law.'],
        clauses=[
            ("Supply and Purchase", [
                "Subject to the terms of this Agreement, {a} shall manufacture and supply to {b}, and {b} shall purchase from {a}, {pick:all|not less than eighty percent (80%)|not less than sixty percent (60%)} of {b}'s requirements of the Products."]),
            ("Forecasts and Purchase Orders", [
                "{B} shall provide {a}, on or before the first Business Day of each calendar month, a rolling {forecast} forecast of its anticipated requirements for the Products. The first three (3) months of each forecast shall constitute a binding commitment, and the remainder shall be non-binding and for planning purposes only.",
                "In the event of any conflict between the terms of a Purchase Order and this Agreement, the terms of this Agreement shall control, and any additional or different terms contained in a Purchase Order or acknowledgment thereof shall be of no force or effect."]),
            ("Delivery", [
                "{A} shall deliver the Products {incoterm} (Incoterms 2020) on the delivery dates specified in the applicable Purchase Order. Time is of the essence with respect to delivery.",
                "If {a} anticipates any delay in delivery, it shall promptly notify {b} in writing of the cause and the expected duration of such delay."]),
            ("Inspection and Acceptance", [
                "{B} shall inspect the Products within {inspection} after receipt and may reject any Products that fail to conform to the Specifications by written notice to {a} specifying the nonconformity in reasonable detail. {A} shall, at its option and expense, replace such nonconforming Products or credit {b} for the purchase price thereof."]),
            ("Quality", [
                "{A} shall manufacture the Products in accordance with the Specifications, cGMP, the Quality Agreement and all applicable laws.",
                "{B} shall have the right, upon reasonable notice and during normal business hours, to audit {a}'s manufacturing facilities no more than once per calendar year."]),
            ("Pricing", [
                "The prices set forth in Schedule 1 shall remain firm for the first Contract Year. Thereafter, {a} may adjust the prices not more than once per Contract Year upon {notice} prior written notice, provided that any increase shall not exceed the percentage change in the Producer Price Index for the preceding twelve (12) months.",
                "{B} shall pay each undisputed invoice within {payment} after receipt thereof."]),
        ]),
    ContractKind(
        titles=["MASTER SERVICES AGREEMENT", "PROFESSIONAL SERVICES AGREEMENT", "CONSULTING AGREEMENT"],
        roles=[("Client", "Service Provider"), ("Company", "Consultant")],
        recitals=["WHEREAS, {a} is engaged in the development and sale of {goods};",
                  "WHEREAS, {b} has expertise in the provision of implementation, integration and support services; and",
                  "WHEREAS, {a} desires to retain {b} to provide such services, and {b} desires to provide such services, on the terms set forth herein;"],
        subject="Deliverables",
        definitions=['"Services" means the services described in each Statement of Work.',
                     '"Statement of Work" means a written statement of work executed by both Parties that references this Agreement and describes the Services, Deliverables, schedule and fees.',
                     '"Deliverables" means all documents, software, reports and other materials provided by {b} to {a} in the performance of the Services.'],
        clauses=[
            ("Services", [
                "{B} shall perform the Services described in each Statement of Work in a professional and workmanlike manner, in accordance with generally recognized industry standards.",
                "Each Statement of Work shall be governed by the terms of this Agreement; in the event of any conflict, the terms of this Agreement shall prevail unless the Statement of Work expressly provides otherwise."]),
            ("Fees and Expenses", [
                "{A} shall pay {b} the fees set forth in the applicable Statement of Work, at the rate of {hourly} per hour unless otherwise specified. {B} shall invoice {a} monthly in arrears, and {a} shall pay each undisputed invoice within {payment} after receipt.",
                "{A} shall reimburse {b} for reasonable, pre-approved out-of-pocket travel expenses incurred in the performance of the Services, in accordance with {a}'s travel policy."]),
            ("Acceptance", [
                "{A} shall have {inspection} following delivery of each Deliverable to accept or reject such Deliverable by written notice. If {a} rejects a Deliverable, {b} shall correct the deficiencies and redeliver the Deliverable within {cure} at no additional charge."]),
            ("Ownership of Deliverables", [
                "Upon payment in full, all right, title and interest in and to the Deliverables shall vest in {a}. {B} shall retain ownership of its pre-existing materials and hereby grants to {a} a non-exclusive, perpetual, royalty-free {licence} to use such materials to the extent incorporated into the Deliverables."]),
            ("Personnel", [
                "{B} shall assign qualified personnel to perform the Services and shall replace any such personnel upon the reasonable request of {a}. {B} shall be solely responsible for the compensation, benefits and taxes of its personnel."]),
        ]),
]
PICK_CONTRACT_KIND = Zipf(CONTRACT_KINDS, s=0.3)

# (heading, weight: how often real agreements carry it, paragraphs), in the order agreements place them.
COMMON_CLAUSES = [
    ("Term and Termination", 10, [
        "This Agreement shall commence on the Effective Date and shall continue in full force and effect for an initial term of {term} (the \"Initial Term\"), and thereafter shall automatically renew for successive {renewal} periods (each, a \"Renewal Term\"), unless either Party gives written notice of non-renewal at least {notice} prior to the expiration of the then-current term.",
        "Either Party may terminate this Agreement upon written notice if the other Party materially breaches this Agreement and fails to cure such breach within {cure} after receipt of written notice thereof.",
        "Either Party may terminate this Agreement immediately upon written notice if the other Party becomes insolvent, makes a general assignment for the benefit of creditors, files a petition in bankruptcy, or has a receiver appointed for all or substantially all of its assets.",
        "Upon expiration or termination of this Agreement for any reason, all rights and licenses granted hereunder shall terminate, and each Party shall return to the other all Confidential Information of the other Party then in its possession.",
        "Notwithstanding the foregoing, termination of this Agreement shall not affect any order or statement of work then outstanding, which shall continue to be governed by the terms hereof until the obligations thereunder have been performed."]),
    ("Representations and Warranties", 4, [
        "Each Party represents and warrants to the other Party that (a) it is duly organized, validly existing and in good standing under the laws of its jurisdiction of organization; (b) it has the full right, power and authority to enter into this Agreement and to perform its obligations hereunder; and (c) the execution of this Agreement by its representative whose signature is set forth below has been duly authorized by all necessary corporate action.",
        "^Except as expressly set forth in this Agreement, neither Party makes any other warranty, express or implied, and each Party expressly disclaims all implied warranties, including any warranties of merchantability, fitness for a particular purpose, title and non-infringement."]),
    ("Confidentiality", 7, [
        "Each Party (the \"Receiving Party\") shall hold in confidence all Confidential Information of the other Party (the \"Disclosing Party\") and shall not disclose such Confidential Information to any third party or use it for any purpose other than the performance of its obligations hereunder.",
        "Notwithstanding the foregoing, the Receiving Party may disclose Confidential Information to the extent required by applicable law, provided that it gives the Disclosing Party prompt written notice thereof and reasonable assistance in seeking a protective order.",
        "The obligations set forth in this Section shall survive the termination or expiration of this Agreement for a period of {conf_years}."]),
    ("Indemnification", 7, [
        "{B} shall indemnify, defend and hold harmless {a}, its Affiliates and their respective officers, directors, employees and agents from and against any and all losses, damages, liabilities, costs and expenses, including reasonable attorneys' fees (collectively, \"Losses\"), arising out of or relating to any third-party claim resulting from (a) {b}'s breach of this Agreement, (b) the negligence or willful misconduct of {b} or its personnel, or (c) {b}'s violation of applicable law.",
        "{A} shall indemnify and hold harmless {b} from and against all Losses arising out of any third-party claim that the {indemnified_subject} infringe or misappropriate any Intellectual Property Rights of such third party.",
        "The indemnified party shall give the indemnifying party prompt written notice of any claim for which indemnification is sought, provided that failure to give such notice shall not relieve the indemnifying party of its obligations hereunder except to the extent it is materially prejudiced thereby. The indemnifying party shall have sole control of the defense and settlement of such claim, provided that it shall not settle any claim that imposes any obligation on the indemnified party without its prior written consent."]),
    ("Limitation of Liability", 7, [
        "^Except with respect to a Party's indemnification obligations or breach of its confidentiality obligations, in no event shall either Party be liable to the other Party for any indirect, incidental, consequential, special, exemplary or punitive damages, including lost profits or loss of business, arising out of or relating to this Agreement, whether in contract, tort (including negligence) or otherwise, even if advised of the possibility thereof.",
        "^In no event shall either Party's aggregate liability arising out of or related to this Agreement exceed {liability_cap}."]),
    ("Insurance", 2, [
        "During the Term and for a period of two (2) years thereafter, {b} shall maintain, at its own expense, commercial general liability insurance with limits of not less than {money_large} per occurrence, and shall name {a} as an additional insured thereunder. Upon request, {b} shall furnish certificates of insurance evidencing such coverage."]),
    ("Compliance with Laws", 3, [
        "Each Party shall comply with all applicable laws in connection with its performance under this Agreement, including anti-bribery and anti-corruption laws such as the U.S. Foreign Corrupt Practices Act and the UK Bribery Act 2010, and all applicable export control and economic sanctions laws."]),
    ("Force Majeure", 5, [
        "Neither Party shall be liable for any failure or delay in performing its obligations hereunder (other than payment obligations) to the extent such failure or delay is caused by events beyond its reasonable control, including {force_majeure_events} (each, a \"Force Majeure Event\").",
        "The affected Party shall promptly notify the other Party of the Force Majeure Event and use commercially reasonable efforts to mitigate its effects. If a Force Majeure Event continues for more than {force_majeure_days}, the other Party may terminate this Agreement upon written notice."]),
    ("Assignment", 6, [
        "Neither Party may assign or transfer this Agreement, or any of its rights or obligations hereunder, whether voluntarily, by operation of law or otherwise, without the prior written consent of the other Party. Notwithstanding the foregoing, either Party may assign this Agreement without such consent to an Affiliate or to a successor in connection with a merger, acquisition or sale of all or substantially all of its assets to which this Agreement relates.",
        "Any purported assignment in violation of this Section shall be null and void. This Agreement shall be binding upon and inure to the benefit of the Parties and their respective successors and permitted assigns."]),
    ("Governing Law", 10, [
        "This Agreement shall be governed by and construed in accordance with the laws of {law}, without giving effect to any choice or conflict of law provision or rule that would cause the application of the laws of any other jurisdiction.",
        "Each Party irrevocably submits to the exclusive jurisdiction of {courts} for any action arising out of or relating to this Agreement, and waives any objection to venue therein.",
        "The United Nations Convention on Contracts for the International Sale of Goods shall not apply to this Agreement."]),
    ("Dispute Resolution", 3, [
        "Any dispute, controversy or claim arising out of or relating to this Agreement, or the breach, termination or validity thereof, shall be finally settled by binding arbitration administered by {arbitration} in accordance with its rules then in effect. The seat of arbitration shall be {seat}, the language of the arbitration shall be English, and judgment on the award may be entered in any court having jurisdiction thereof.",
        "Prior to initiating arbitration, the Parties shall attempt in good faith to resolve any dispute through negotiation between senior executives for a period of thirty (30) days."]),
    ("Waiver of Jury Trial", 1, [
        "^Each Party hereby irrevocably waives, to the fullest extent permitted by applicable law, any right it may have to a trial by jury in any legal proceeding arising out of or relating to this Agreement."]),
    ("Notices", 6, [
        "All notices hereunder shall be in writing and shall be deemed given (a) when delivered personally, (b) one (1) Business Day after deposit with a nationally recognized overnight courier, or (c) when sent by email with confirmation of transmission, in each case to the addresses set forth in the preamble or such other address as a Party may designate by notice given in accordance with this Section."]),
    ("Relationship of the Parties", 3, [
        "The relationship between the Parties is that of independent contractors. Nothing contained in this Agreement shall be construed as creating any agency, partnership, joint venture or other form of joint enterprise, employment or fiduciary relationship between the Parties, and neither Party shall have authority to contract for or bind the other Party in any manner whatsoever."]),
    ("Publicity", 2, [
        "Neither Party shall issue any press release or public announcement regarding this Agreement or use the name, logo or trademarks of the other Party without the prior written consent of the other Party, except as required by applicable law or the rules of any stock exchange on which its securities are listed."]),
    ("Non-Solicitation", 1, [
        "During the Term and for twelve (12) months thereafter, neither Party shall, directly or indirectly, solicit for employment any employee of the other Party with whom it had material contact in connection with this Agreement; provided that general solicitations not targeted at such employees shall not be deemed a breach of this Section."]),
    ("Severability", 6, [
        "If any provision of this Agreement is held invalid, illegal or unenforceable in any jurisdiction, such provision shall be modified to the minimum extent necessary to make it enforceable, and the remaining provisions of this Agreement shall continue in full force and effect."]),
    ("Amendment and Waiver", 4, [
        "This Agreement may be amended, modified or supplemented only by an agreement in writing signed by each Party hereto.",
        "No waiver by any Party of any of the provisions hereof shall be effective unless explicitly set forth in writing and signed by the Party so waiving. No failure to exercise, or delay in exercising, any right or remedy arising from this Agreement shall operate or be construed as a waiver thereof."]),
    ("Survival", 2, [
        "Any provision of this Agreement which by its nature is intended to survive, including the provisions relating to confidentiality, indemnification, limitation of liability and governing law, shall survive the expiration or termination of this Agreement."]),
    ("Third-Party Beneficiaries", 1, [
        "This Agreement is for the sole benefit of the Parties hereto and their respective successors and permitted assigns, and nothing herein, express or implied, is intended to or shall confer upon any other person any legal or equitable right, benefit or remedy of any nature whatsoever under or by reason of this Agreement."]),
    ("Further Assurances", 1, [
        "Each Party shall, upon the reasonable request of the other Party, execute such documents and perform such further acts as may be reasonably necessary to give full effect to this Agreement."]),
    ("Interpretation", 1, [
        "The headings in this Agreement are for reference only and shall not affect the interpretation hereof. As used herein, the words \"include,\" \"includes\" and \"including\" shall be deemed to be followed by the phrase \"without limitation,\" and the words \"herein,\" \"hereof\" and \"hereunder\" refer to this Agreement as a whole."]),
    ("Entire Agreement", 7, [
        "This Agreement, together with all Exhibits and Schedules hereto, constitutes the entire agreement between the Parties with respect to the subject matter hereof and supersedes all prior and contemporaneous understandings, agreements, representations and warranties, both written and oral, with respect to such subject matter."]),
    ("Counterparts", 4, [
        "This Agreement may be executed in counterparts, each of which shall be deemed an original, but all of which together shall be deemed to be one and the same agreement. A signed copy of this Agreement delivered by email or other means of electronic transmission shall be deemed to have the same legal effect as delivery of an original signed copy."]),
]


# --------------------------------------------------------------------------------------------------
# Legal: assembling an agreement
# --------------------------------------------------------------------------------------------------

def weighted_sample(rng: random.Random, items: list, weights: list[float], k: int) -> list:
    """k distinct items, each draw proportional to weight; returned in the input order."""
    pool = list(range(len(items)))
    chosen = []
    for _ in range(min(k, len(pool))):
        index = rng.choices(pool, weights=[weights[i] for i in pool])[0]
        pool.remove(index)
        chosen.append(index)
    return [items[i] for i in sorted(chosen)]


def contract_context(rng: random.Random, kind: ContractKind) -> dict:
    """The deal: parties, roles, law, money and periods that every clause of one agreement shares."""
    law, courts, arbitration, seat, currency = LAWS(rng)
    british = law == "England and Wales"
    first, second = company(rng, british), company(rng)
    a_role, b_role = rng.choice(kind.roles)
    # Some agreements say "the Licensee" throughout, others just "Licensee".
    article = rng.choice(["the ", "the ", ""])
    effective = random_date(rng, 2015, 2024)

    def money(low: int, high: int, step: int) -> str:
        return f"{currency}{rng.randrange(low, high, step):,}"

    ctx = {
        "a": article + a_role, "b": article + b_role, "a_role": a_role, "b_role": b_role,
        "a_name": first["name"], "b_name": person_name(rng) if kind.individual else second["name"],
        "a_entity": first["entity"], "b_entity": "an individual" if kind.individual else second["entity"],
        "a_address": first["address"], "b_address": second["address"], "goods": first["goods"],
        "effective": f"{effective:%B} {effective.day}, {effective.year}",
        "law": law, "courts": courts, "arbitration": arbitration, "seat": seat,
        # Contracts under English law spell the noun "licence"; the verb stays "license".
        "licence": "licence" if british else "license",
        "exclusive": rng.choice(["exclusive", "non-exclusive", "exclusive", "sole and exclusive"]),
        "sublicensable": rng.choice(["non-sublicensable", "sublicensable (through multiple tiers)",
                                     "non-sublicensable (except as expressly provided in this Agreement)"]),
        "territory": rng.choice(["the United States of America and its territories and possessions", "Canada",
                                 "the member states of the European Union and the United Kingdom", "the countries listed in Exhibit C",
                                 "the United States, Canada and Mexico", "Australia and New Zealand", "all countries of the world"]),
        "transaction": rng.choice(["business relationship", "strategic partnership", "acquisition of certain assets",
                                   "joint development program", "supply arrangement", "licensing transaction"]),
        "position": rng.choice(["Chief Financial Officer", "Vice President of Sales", "Chief Technology Officer",
                                "General Counsel", "Director of Engineering", "Chief Operating Officer"]),
        "reports_to": rng.choice(["Chief Executive Officer", "Board", "President"]),
        "term": legal_number(rng.choice([1, 2, 3, 5]), "year"), "renewal": legal_number(1, "year"),
        "lease_term": legal_number(rng.choice([3, 5, 7, 10]), "year"),
        "notice": legal_number(rng.choice([30, 60, 90]), "day"), "cure": legal_number(rng.choice([15, 30, 45]), "day"),
        "payment": legal_number(rng.choice([30, 45, 60]), "day"), "lead_time": legal_number(rng.choice([30, 45, 60, 90]), "day"),
        "inspection": legal_number(rng.choice([10, 15, 30]), "day"), "forecast": legal_number(rng.choice([12, 18, 24]), "month", adjective=True),
        "warranty": legal_number(rng.choice([12, 18, 24]), "month"), "record_years": legal_number(rng.choice([3, 5]), "year"),
        "conf_years": legal_number(rng.choice([2, 3, 5, 7]), "year"), "severance": legal_number(rng.choice([6, 12, 18]), "month"),
        "restricted": legal_number(rng.choice([6, 12, 18, 24]), "month"), "vacation": legal_number(rng.choice([15, 20]), "day"),
        "force_majeure_days": legal_number(rng.choice([30, 60, 90, 120]), "day"),
        "force_majeure_events": join_list(FORCE_MAJEURE_EVENTS.sample(rng, rng.randint(3, 7))),
        "royalty": rng.choice(["three percent (3%)", "four and one-half percent (4.5%)", "six percent (6%)",
                               "eight percent (8%)", "twelve percent (12%)"]),
        "bonus": rng.choice(["thirty percent (30%)", "forty percent (40%)", "fifty percent (50%)"]),
        "salary": money(145_000, 420_000, 5_000), "rent": money(8_000, 95_000, 250),
        "money_small": money(25_000, 250_000, 5_000), "money_large": money(500_000, 5_000_000, 50_000),
        "hourly": money(150, 450, 25),
        "liability_cap": rng.choice(["the total fees paid or payable by {b} under this Agreement during the twelve (12) months preceding the event giving rise to the claim",
                                     "{money_large}", "the greater of (a) {money_small} and (b) the amounts paid hereunder in the preceding twelve (12) months"]),
        "indemnified_subject": kind.subject,
        "premises": f"{rng.randint(100, 2400)} {rng.choice(STREETS)} {rng.choice(['Street', 'Avenue', 'Plaza'])}",
        "british": british,
    }
    ctx["incoterm"] = fill(rng.choice(INCOTERMS), ctx, rng)
    ctx["an_exclusive"] = ("an " if ctx["exclusive"][0] in "aeiou" else "a ") + ctx["exclusive"]
    return ctx


def number_clause(style: str, number: int, heading_text: str, paragraphs: list[str]) -> str:
    """Render clause ``number`` in one of the numbering styles real agreements use."""
    if style == "article":
        head = f"ARTICLE {number}\n{heading_text.upper()}"
    elif style == "section":
        head = f"Section {number}. {heading_text}."
    else:
        head = f"{number}. {heading_text.upper()}."
    if len(paragraphs) == 1:
        return f"{head}\n{paragraphs[0]}"
    return head + "\n" + "\n".join(f"{number}.{i} {p}" for i, p in enumerate(paragraphs, 1))


def render_paragraph(template: str, ctx: dict, rng: random.Random) -> str:
    if template.startswith("^"):
        return fill(template[1:], ctx, rng).upper()
    return fill(template, ctx, rng)


def choose_paragraphs(rng: random.Random, paragraphs: list[str]) -> list[str]:
    extra = [p for p in paragraphs[1:] if rng.random() < 0.25]
    return [paragraphs[0]] + extra


PREAMBLES = [
    'This {title} (this "Agreement") is entered into as of {effective} (the "Effective Date") by and between {a_name}, {a_entity} with its principal place of business at {a_address} ({pick:hereinafter referred to as |}{a_def}), and {b_name}, {b_entity} {b_location} ({b_def}). {A_name} and {b_name} are each referred to herein as a "Party" and collectively as the "Parties."',
    'THIS {title} (the "Agreement") is made and entered into as of {effective} (the "Effective Date"), by and between {a_name}, {a_entity} (hereinafter referred to as {a_def}), and {b_name}, {b_entity} (hereinafter referred to as {b_def}). {A} and {b} may be referred to individually as a "Party" and together as the "Parties."',
    '{title}, dated as of {effective}, between {a_name}, {a_entity} ({a_def}), and {b_name}, {b_entity} ({b_def}; each of {a} and {b}, a "Party").',
]
BRITISH_PREAMBLE = 'THIS {title} is dated {effective}.\nPARTIES\n(1) {a_name}, {a_entity} whose registered office is at {a_address} ({a_def}); and\n(2) {b_name}, {b_entity} {b_location} ({b_def}).'
CONSIDERATION = [
    "NOW, THEREFORE, in consideration of the mutual covenants and agreements set forth herein, and for other good and valuable consideration, the receipt and sufficiency of which are hereby acknowledged, the Parties agree as follows:",
    "NOW, THEREFORE, intending to be legally bound, the Parties hereto agree as follows:",
    "In consideration of the premises and the mutual promises contained herein, the Parties hereby agree as follows:",
]
WITNESS = [
    "IN WITNESS WHEREOF, the Parties hereto have caused this Agreement to be executed by their duly authorized representatives as of the Effective Date.",
    "IN WITNESS WHEREOF, the parties have executed this Agreement as of the date first written above.",
    "IN WITNESS WHEREOF, each Party has caused this Agreement to be signed and delivered by its duly authorized officer.",
]


def recitals(texts: list[str]) -> list[str]:
    """Punctuate WHEREAS clauses as one sentence: "...;", "...; and", "...."."""
    bare = [t.removesuffix(" and").rstrip(";.") for t in texts]
    endings = [";"] * (len(bare) - 2) + ["; and", "."]
    return [text + ending for text, ending in zip(bare, endings[-len(bare):])]


def defined_term(reference: str) -> str:
    """How the preamble defines a party, matching how the clauses refer to it: ``the "Licensee"``."""
    if reference.startswith("the "):
        return f'the "{reference[4:]}"'
    return f'"{reference}"'


def signature_block(rng: random.Random, name: str, individual: bool) -> str:
    if individual:
        return f"{name.upper()}\n/s/ {name}"
    signer = person_name(rng)
    return f"{name.upper()}\nBy: /s/ {signer}\nName: {signer}\nTitle: {SIGNER_TITLES(rng)}"


def contract(rng: random.Random) -> str:
    kind = PICK_CONTRACT_KIND(rng)
    ctx = contract_context(rng, kind)
    title = rng.choice(kind.titles)
    if ctx["british"]:
        title = title.replace("LICENSE", "LICENCE")
    ctx.update(title=title, a_def=defined_term(ctx["a"]), b_def=defined_term(ctx["b"]),
               b_location=("residing at " if kind.individual else "with offices at ") + ctx["b_address"])

    if ctx["british"] and not kind.individual:
        parts = [fill(BRITISH_PREAMBLE, ctx, rng), "BACKGROUND"]
        parts += [f"({letter}) " + capitalize(fill(r.removeprefix("WHEREAS, "), ctx, rng).removesuffix(" and").rstrip(";")) + "."
                  for letter, r in zip("ABC", kind.recitals)]
        parts.append("AGREED TERMS")
    else:
        parts = [title, fill(rng.choice(PREAMBLES), ctx, rng)]
        if rng.random() < 0.7:  # many agreements go straight from the preamble to the terms
            parts.append("RECITALS" if rng.random() < 0.3 else "")
            parts += recitals([fill(r, ctx, rng) for r in kind.recitals[: rng.randint(2, 3)]])
            parts.append(rng.choice(CONSIDERATION))
        else:
            parts.append("The Parties agree as follows:")

    style = rng.choice(["plain", "plain", "section", "article"])
    clauses: list[tuple[str, list[str]]] = []
    if rng.random() < 0.25:
        definitions = rng.sample(kind.definitions, rng.randint(1, 2))
        definitions += rng.sample(COMMON_DEFINITIONS, rng.randint(0, 1))
        clauses.append(("Definitions", definitions))
    specific = sorted(rng.sample(range(len(kind.clauses)), rng.choice([1, 2])))
    clauses += [(kind.clauses[i][0], choose_paragraphs(rng, kind.clauses[i][1])) for i in specific]
    common = [c for c in COMMON_CLAUSES if c[0] not in kind.skip_common]
    picked = weighted_sample(rng, common, [w for _, w, _ in common], rng.choice([2, 2, 3]))
    clauses += [(heading_text, choose_paragraphs(rng, paragraphs)) for heading_text, _, paragraphs in picked]

    for number, (heading_text, paragraphs) in enumerate(clauses, 1):
        rendered = [render_paragraph(p, ctx, rng) for p in paragraphs]
        parts.append(number_clause(style, number, fill(heading_text, ctx, rng), rendered))

    parts.append(rng.choice(WITNESS))
    parts.append(signature_block(rng, ctx["a_name"], False))
    parts.append(signature_block(rng, ctx["b_name"], kind.individual))
    return "\n\n".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------------
# General English: everyday paragraphs to contrast with the domain corpora
# --------------------------------------------------------------------------------------------------

TOWNS = ["Maple Hollow", "Eastbrook", "Cedar Falls", "Willow Bend", "Harbor View", "Pine Ridge", "Stonebridge",
         "Millbrook", "Fairhaven", "Oak Creek"]
PLACES = ["public library", "community garden", "farmers market", "swimming pool", "bakery on Main Street",
          "old train station", "riverside park", "elementary school", "bike path", "town square"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SEASONS = ["spring", "summer", "autumn", "winter"]

GENERAL_CHOICES = {
    "town": TOWNS, "place": PLACES, "day": DAYS, "season": SEASONS, "name": GIVEN_NAMES,
    "food": ["vegetable soup", "pancakes", "tomato salad", "roast chicken", "pasta with garlic and spinach",
             "grilled cheese sandwich", "mushroom risotto"],
    "pastry": ["apple pie", "lemon cake", "banana bread", "cinnamon rolls", "blueberry muffins"],
    "weather": ["sunny and mild", "cloudy with a light breeze", "rainy in the morning and clear by the afternoon",
                "cold and bright", "warm and humid", "windy, with scattered showers"],
    "hobby": ["painting", "running", "baking", "birdwatching", "woodworking", "playing the guitar", "gardening",
              "photography", "knitting", "chess"],
    "team": ["the Eastbrook Otters", "the Cedar Falls Hawks", "the Pine Ridge Rovers", "the Millbrook Foxes"],
}


def general_context(rng: random.Random) -> dict:
    """One town, one person, one season per piece, so a story does not change its hero halfway."""
    ctx = {key: rng.choice(values) for key, values in GENERAL_CHOICES.items()}
    ctx["name2"] = rng.choice([n for n in GIVEN_NAMES if n != ctx["name"]])
    ctx["team2"] = rng.choice([t for t in GENERAL_CHOICES["team"] if t != ctx["team"]])
    return ctx

NEWS_SENTENCES = [
    "Residents of {town} gathered on {day} to celebrate the reopening of the {place}, which had been closed for repairs since last {season}.",
    "The project took longer than expected, but most people agreed that the wait was worth it.",
    "\"We wanted a place where families can spend time together,\" said {name}, who has lived in {town} for {n:5-40} years.",
    "Volunteers handed out free lemonade and showed children how to plant sunflower seeds.",
    "The town council said it would keep the {place} open until {n:7-9} p.m. during the warmer months.",
    "Local businesses reported a busy afternoon, and the bakery sold out of {pastry} before noon.",
    "Next month, organizers plan a small concert and a used book sale to raise money for new benches.",
    "Parking will be limited, so visitors are encouraged to walk, cycle, or take the number {n:3-12} bus.",
    "Some neighbors raised concerns about noise, and the council promised to review the schedule in the {season}.",
    "The weather was {weather}, which helped bring out a larger crowd than usual.",
]

HOW_TO = [
    ("repot a houseplant", ["Choose a pot that is one size larger than the old one and has a hole in the bottom.",
                            "Water the plant a day before so the roots slide out more easily.",
                            "Turn the old pot on its side and gently ease the plant out, holding it near the base.",
                            "Loosen any roots that circle the bottom with your fingers.",
                            "Add fresh soil to the new pot, set the plant in place, and fill in around the sides.",
                            "Water slowly until it drains from the bottom, then keep the plant out of direct sun for a few days."]),
    ("fix a flat bicycle tire", ["Remove the wheel and let out any air that is left in the tube.",
                                 "Use two tire levers to lift one side of the tire off the rim.",
                                 "Pull out the tube and pump a little air into it to find the leak.",
                                 "Run your fingers carefully around the inside of the tire to check for glass or thorns.",
                                 "Patch the hole or fit a new tube, then push the tire back onto the rim with your thumbs.",
                                 "Pump the tire to the pressure printed on its side and check that it sits evenly."]),
    ("make cold brew coffee", ["Grind the coffee beans coarsely, about as rough as sea salt.",
                               "Mix one cup of grounds with four cups of cold water in a large jar.",
                               "Stir well so that all the grounds are wet, then cover the jar.",
                               "Leave it on the counter or in the fridge for twelve to eighteen hours.",
                               "Strain the coffee through a fine sieve lined with a paper filter.",
                               "Dilute it with water or milk to taste and keep the rest in the fridge for up to a week."]),
    ("start a small vegetable garden", ["Pick a spot that gets at least six hours of sunlight a day.",
                                        "Start small; a bed of about one by two meters is plenty for a first year.",
                                        "Mix compost into the soil to help it hold water and feed the plants.",
                                        "Choose easy crops such as lettuce, beans, radishes, and zucchini.",
                                        "Water early in the morning so the leaves dry before evening.",
                                        "Pull weeds once a week while they are still small."]),
    ("clean a cast-iron pan", ["Wash the pan while it is still warm, using hot water and a stiff brush.",
                               "Use a little coarse salt as a scrub for stuck-on bits of food.",
                               "Dry the pan completely with a towel, then set it on low heat for a minute.",
                               "Rub a thin layer of cooking oil over the inside with a paper towel.",
                               "Store it in a dry place, with a paper towel inside if you stack other pans on top."]),
    ("plan a day hike", ["Pick a trail that matches the fitness of everyone in the group.",
                         "Check the weather forecast the night before and again in the morning.",
                         "Pack water, snacks, a map, a light jacket, and a small first-aid kit.",
                         "Tell someone at home where you are going and when you expect to be back.",
                         "Start early so you have plenty of daylight, and turn around if the weather changes.",
                         "Take your rubbish home with you and stay on the marked path."]),
    ("bake a simple loaf of bread", ["Mix flour, salt, yeast, and warm water in a large bowl until no dry flour remains.",
                                     "Knead the dough for about ten minutes, until it feels smooth and springy.",
                                     "Cover the bowl and let the dough rise in a warm spot for an hour.",
                                     "Shape it into a loaf, place it in a greased tin, and let it rise again.",
                                     "Bake at 220 degrees Celsius for about thirty minutes, until the top is golden.",
                                     "Let the bread cool on a rack before slicing so the inside can set."]),
    ("organize a small closet", ["Take everything out so you can see what you actually own.",
                                 "Sort items into three piles: keep, donate, and throw away.",
                                 "Group the clothes you keep by type, then by color.",
                                 "Use the top shelf for things you need only once or twice a year.",
                                 "Add a few hooks on the door for bags, belts, and scarves."]),
]
HOW_TO_INTROS = [
    "Learning to {task} is easier than most people think, and you need only a few basic tools.",
    "If you have never tried to {task}, these steps will help you get it right the first time.",
    "Many readers have asked how to {task}. Here is a simple method that works well at home.",
]
HOW_TO_OUTROS = [
    "With a little practice, the whole job takes less than an hour.",
    "Don't worry if it is not perfect the first time; it gets easier every time you do it.",
    "Once you have done it a couple of times, you will wonder why you ever found it difficult.",
]

STORY_SENTENCES = [
    "{Name} had always wanted to learn {hobby}, but there never seemed to be enough time.",
    "One {season} morning, {name} decided that waiting any longer made no sense.",
    "The first week was harder than expected, and more than once {name} thought about giving up.",
    "A neighbor, {name2}, noticed the effort and offered to help on {day} evenings.",
    "They met at the {place} and talked for hours about everything except the task at hand.",
    "Slowly, the small daily practice began to pay off.",
    "By the end of the month, {name} could do things that had felt impossible only a few weeks before.",
    "It was not the result that mattered most, but the habit of showing up every day.",
    "When friends asked for advice, {name} always said the same thing: start small and keep going.",
    "Years later, {name} still remembered the smell of {pastry} drifting from the kitchen on those long evenings.",
]

WEATHER_SENTENCES = [
    "The weather in {town} this {day} will be {weather}.",
    "Temperatures should reach about {n:8-28} degrees in the afternoon before falling to {n:2-14} degrees overnight.",
    "Commuters should allow a little extra time, as some roads near the {place} may be wet.",
    "The weekend looks brighter, with plenty of sunshine expected on Saturday.",
    "Gardeners will be glad to hear that the long dry spell is finally coming to an end.",
    "If you are planning to be outdoors, bring a light jacket and an umbrella just in case.",
    "Forecasters say the rest of the {season} should be close to the usual average.",
]

REVIEW_SENTENCES = [
    "We visited the new cafe near the {place} last {day} and were pleasantly surprised.",
    "The room was bright and quiet, with large windows and a few comfortable chairs by the door.",
    "I ordered the {food}, and my friend {name} tried the soup of the day.",
    "Both dishes arrived quickly and were served warm, with generous portions.",
    "The staff were friendly and happy to explain what was on the menu.",
    "Prices were fair for the area, though the coffee was a little expensive.",
    "It can get busy at lunchtime, so arrive early if you want a table.",
    "Overall, it is a lovely spot for a slow breakfast or a quiet afternoon with a book.",
]

NOTICE_SENTENCES = [
    "The public library in {town} will be closed from {day} to the following week while the floors are cleaned and repainted.",
    "During this time, books can be returned to the drop box by the front door.",
    "We apologize for any inconvenience and thank everyone for their patience.",
    "Children's story time will move to the church hall across the road for one week only.",
    "Volunteers are still needed to help move shelves on {day} morning; coffee and {pastry} will be provided.",
    "If you have questions, please call the front desk or leave a note in the box at the entrance.",
    "We look forward to welcoming you back to a brighter, more comfortable space.",
]

SPORTS_SENTENCES = [
    "{Team} won their home game against {team2} on {day}, finishing with a score of {n:2-5} to {n:0-1}.",
    "The first half was slow, and both teams struggled to hold on to the ball in the {weather} conditions.",
    "Everything changed early in the second half, when {name} scored from a long pass down the left side.",
    "The crowd, which included many parents and grandparents, cheered loudly for the rest of the game.",
    "The coach said afterwards that the team had worked hard in training all {season}.",
    "\"We kept it simple and trusted each other,\" {name2} said after the final whistle.",
    "Their next game is away from home, and tickets for the bus trip are available from the club office.",
]

GENERAL_KINDS = [("news", NEWS_SENTENCES), ("story", STORY_SENTENCES), ("weather", WEATHER_SENTENCES),
                 ("review", REVIEW_SENTENCES), ("notice", NOTICE_SENTENCES), ("sports", SPORTS_SENTENCES)]


def general_paragraphs(rng: random.Random) -> str:
    """One everyday piece: a how-to with steps, or a news item, story, forecast or review."""
    if rng.random() < 0.3:
        task, steps = rng.choice(HOW_TO)
        chosen = sorted(rng.sample(range(len(steps)), rng.randint(4, len(steps))))
        lines = [f"How to {task}", fill(rng.choice(HOW_TO_INTROS), {"task": task}, rng)]
        lines += [f"{i}. {steps[j]}" for i, j in enumerate(chosen, 1)]
        lines.append(rng.choice(HOW_TO_OUTROS))
        return "\n".join(lines)
    _, sentences = rng.choice(GENERAL_KINDS)
    count = rng.randint(min(5, len(sentences)), len(sentences))
    chosen = [sentences[0]] + sorted(rng.sample(sentences[1:], count - 1), key=sentences.index)
    text = fill(" ".join(chosen), general_context(rng), rng)
    # Longer pieces read better broken into two paragraphs (split between sentences, not inside "p.m.").
    sentences_out = re.split(r'(?<=[.!?"]) (?=[A-Z"])', text)
    if len(sentences_out) > 6:
        middle = len(sentences_out) // 2
        text = " ".join(sentences_out[:middle]) + "\n\n" + " ".join(sentences_out[middle:])
    return text


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CorpusSpec:
    path: str                  # relative to this folder
    corpus: str                # seed namespace and id prefix
    count: int
    build: Callable[[random.Random], str]
    min_words: int
    max_words: int


CORPORA = [
    CorpusSpec("medical/clinical_notes.jsonl", "medical", 300, clinical_note, 80, 400),
    CorpusSpec("legal/contracts.jsonl", "legal", 300, contract, 150, 500),
    CorpusSpec("general/general.jsonl", "general", 100, general_paragraphs, 60, 250),
]


def render(spec: CorpusSpec) -> bytes:
    """The exact bytes of one corpus file: UTF-8 JSON Lines with sorted keys and "\\n" line ends."""
    docs = make_documents(spec.corpus, spec.count, spec.build, spec.min_words, spec.max_words)
    lines = [json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n" for doc in docs]
    return "".join(lines).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate in memory and exit 1 if any file on disk differs")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder to write into or check (default: the folder holding this script)")
    args = parser.parse_args(argv)

    stale = []
    for spec in CORPORA:
        target = args.out / spec.path
        expected = render(spec)
        if args.check:
            if not target.is_file() or target.read_bytes() != expected:
                stale.append(spec.path)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(expected)
        print(f"wrote {target} ({spec.count} docs, {len(expected):,} bytes)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python corpora/generate.py", file=sys.stderr)
        return 1
    if args.check:
        print("corpora are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
