"""The built-in exploitation types, seeded by a migration; admins may add more rows later."""

from __future__ import annotations

# Languages every label must exist in (the app's supported languages).
LANGUAGES = ("en", "lt", "tl", "id", "es", "ar")

BUILTIN_TYPES: dict[str, dict[str, str]] = {
    "sexual": {
        "en": "Sexual exploitation",
        "lt": "Seksualinis išnaudojimas",
        "tl": "Sekswal na pagsasamantala",
        "id": "Eksploitasi seksual",
        "es": "Explotación sexual",
        "ar": "الاستغلال الجنسي",
    },
    "labour": {
        "en": "Labour exploitation",
        "lt": "Darbo išnaudojimas",
        "tl": "Pagsasamantala sa paggawa",
        "id": "Eksploitasi tenaga kerja",
        "es": "Explotación laboral",
        "ar": "الاستغلال في العمل",
    },
    "domestic_servitude": {
        "en": "Domestic servitude",
        "lt": "Namų vergovė",
        "tl": "Sapilitang paninilbihan sa tahanan",
        "id": "Perbudakan rumah tangga",
        "es": "Servidumbre doméstica",
        "ar": "العبودية المنزلية",
    },
    "criminal": {
        "en": "Forced criminality",
        "lt": "Priverstinis nusikalstamas darbas",
        "tl": "Sapilitang paggawa ng krimen",
        "id": "Eksploitasi untuk kejahatan",
        "es": "Explotación para actividades delictivas",
        "ar": "الإكراه على ارتكاب الجرائم",
    },
    "child": {
        "en": "Child exploitation",
        "lt": "Vaikų išnaudojimas",
        "tl": "Pagsasamantala sa bata",
        "id": "Eksploitasi anak",
        "es": "Explotación infantil",
        "ar": "استغلال الأطفال",
    },
    "organ_harvesting": {
        "en": "Organ harvesting",
        "lt": "Organų išėmimas",
        "tl": "Sapilitang pagkuha ng lamang-loob",
        "id": "Pengambilan organ secara paksa",
        "es": "Extracción de órganos",
        "ar": "نزع الأعضاء",
    },
    "forced_marriage": {
        "en": "Forced marriage",
        "lt": "Priverstinė santuoka",
        "tl": "Sapilitang pagpapakasal",
        "id": "Pernikahan paksa",
        "es": "Matrimonio forzado",
        "ar": "الزواج القسري",
    },
    "other": {
        "en": "Other",
        "lt": "Kita",
        "tl": "Iba pa",
        "id": "Lainnya",
        "es": "Otro",
        "ar": "أخرى",
    },
    "unknown": {
        "en": "Not sure",
        "lt": "Nežinau",
        "tl": "Hindi sigurado",
        "id": "Tidak yakin",
        "es": "No estoy seguro",
        "ar": "غير متأكد",
    },
}
