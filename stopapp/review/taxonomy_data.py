"""The analysts' tag vocabulary as seeded: dimensions, codes, labels and crosswalks.

Seeded into `tag_codes` by migration i6a_accounts_taxonomy; admins then add, relabel and
retire codes through stopapp/review/taxonomy.py (the table is the truth from then on, this
module only its first state). A tag on a report is `dimension:code`.

Every dimension is multi-select and has an explicit `other` and `unknown` (or the dimension's
own names for them), so "not stated" is never confused with "not tagged".

`crosswalk` maps partner schemes to their codes, always as lists, so that exports to partners
can be mapped without re-tagging:
  CTDC      Counter-Trafficking Data Collaborative codebook columns (binary flags)
  CTDC-syn  CTDC global synthetic dataset composite columns
  HTCDS     IOM Human Trafficking Case Data Standard 2.0 picklist values
  NRM       UK National Referral Mechanism exploitation categories
  ISIC      ISIC rev. 4 sections (letters) or divisions (letter + 2 digits)
  ILO       ILO indicators of forced labour (2012)
  Polaris   Polaris typology of modern slavery (2017)
  Unseen    UK Modern Slavery & Exploitation Helpline categories
  source    where a code without a coded equivalent comes from (FinCEN, FINTRAC, Signs...)
A key beginning with "_" annotates instead of mapping: `_unverified` lists the schemes whose
mapping for the code still needs confirming with the scheme's owner.
"""

from __future__ import annotations

# dimension -> (section of the vocabulary, label)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "type": ("1", "Exploitation type"),
    "sector": ("2", "Sector or venue"),
    "control": ("3a", "Means of control"),
    "sign": ("3b", "Observable sign"),
    "finance": ("3c", "Financial red flag"),
    "recruitment": ("4", "Recruitment method"),
    "recruiter_relation": ("4", "Recruiter's relation to the victim"),
    "platform": ("4", "Online platform used to recruit or exploit"),
}

_SCHEME_NAMES = {"CTDC_syn": "CTDC-syn"}


def _code(code: str, label: str, **schemes: str | list[str]) -> tuple[str, str, dict]:
    crosswalk = {
        _SCHEME_NAMES.get(name, name): [value] if isinstance(value, str) else list(value)
        for name, value in schemes.items()
    }
    return code, label, crosswalk


_SEX_NRM = "Sexual exploitation"
_CRIME_NRM = "Criminal exploitation"

TYPE = [
    _code("sexual_exploitation", "Sexual exploitation: forced or coerced commercial sex",
          CTDC="isSexualExploit", HTCDS="SexualExploitation", NRM=_SEX_NRM),
    _code("sexual_exploitation.prostitution",
          "Prostitution: in-person commercial sex (brothel, escort, street)",
          CTDC="typeOfSexProstitution", HTCDS="Prostitution", NRM=_SEX_NRM),
    _code("sexual_exploitation.pornography", "Pornography: forced sexual images or video",
          CTDC="typeOfSexPornography", HTCDS="Pornography", NRM=_SEX_NRM),
    _code("sexual_exploitation.remote_interactive",
          "Remote sexual services: webcam, live stream or phone",
          CTDC="typeOfSexRemoteInteractiveServices", HTCDS="RemoteInteractiveServices",
          NRM=_SEX_NRM),
    _code("sexual_exploitation.private_servitude",
          "Private sexual servitude: to one person or household",
          CTDC="typeOfSexPrivateSexualServices", HTCDS="PrivateSexualServices", NRM=_SEX_NRM),
    _code("labour_exploitation", "Labour exploitation: forced work in a business",
          CTDC="isForcedLabour", HTCDS=["ForcedLabour", "ChildLabour"],
          NRM="Labour exploitation"),
    _code("domestic_servitude",
          "Domestic servitude: forced housework or care in a private home, usually living in",
          CTDC="typeOfLabourDomesticWork", HTCDS="Servitude", NRM="Domestic servitude",
          _unverified="NRM"),
    _code("criminal_exploitation", "Criminal exploitation: forced to commit crime",
          CTDC=["typeOfLabourIllicitActivities", "typeOfLabourBegging",
                "typeOfLabourPeddling"],
          HTCDS=["ForcedBegging", "Other"], NRM=_CRIME_NRM),
    _code("criminal_exploitation.county_lines",
          "County lines: drug supply using children or vulnerable adults",
          NRM=[_CRIME_NRM, "county lines flag"]),
    _code("criminal_exploitation.cannabis_cultivation",
          "Cannabis cultivation: tending grows, often locked in a house",
          CTDC="typeOfLabourIllicitActivities", NRM=_CRIME_NRM),
    _code("criminal_exploitation.forced_begging", "Forced begging: the takings go to others",
          CTDC="typeOfLabourBegging", HTCDS="ForcedBegging", NRM=_CRIME_NRM),
    _code("criminal_exploitation.theft", "Forced theft: pickpocketing, shoplifting, ATM theft",
          CTDC="typeOfLabourIllicitActivities", NRM=_CRIME_NRM),
    _code("criminal_exploitation.financial_fraud",
          "Financial fraud: benefits, loans or accounts in the victim's name, money mules",
          CTDC="typeOfLabourIllicitActivities", NRM=_CRIME_NRM),
    _code("criminal_exploitation.cuckooing",
          "Cuckooing: a vulnerable person's home taken over as a base",
          NRM=[_CRIME_NRM, "county lines flag"]),
    _code("organ_removal", "Organ removal: trafficking for organs or tissue",
          CTDC="isOrganRemoval", HTCDS="OrganRemoval", NRM="Organ harvesting"),
    _code("forced_marriage",
          "Forced marriage, including sham marriage for immigration benefit",
          CTDC="isForcedMarriage", HTCDS="ForcedMarriage"),
    _code("forced_military", "Forced military service by armed groups (mostly abroad)",
          CTDC="isForcedMilitary", HTCDS="ForcedMilitaryByNonStateActors"),
    _code("reproductive_exploitation", "Reproductive exploitation: forced surrogacy or adoption",
          CTDC="isOtherExploit", HTCDS=["Surrogacy", "ForcedAdoption"]),
    _code("slavery_practices", "Slavery-like ownership not covered by another type",
          CTDC="isSlaveryAndPractices", HTCDS="Servitude"),
    _code("labour_abuse",
          "Labour abuse below the modern-slavery threshold (for labour inspectors, not police)",
          Unseen="labour abuse"),
    _code("other_exploitation", "Another kind of exploitation",
          CTDC="isOtherExploit", HTCDS="Other"),
    _code("unknown", "Type not stated or unclear", NRM="Not specified or unknown"),
]

SECTOR = [
    _code("agriculture", "Agriculture: farms, harvesting, livestock, nurseries",
          CTDC="typeOfLabourAgriculture", ISIC="A", Polaris="Agriculture & animal husbandry"),
    _code("fishing_maritime", "Fishing and maritime: boats, shellfish, aquaculture",
          CTDC="typeOfLabourAquafarming", ISIC="A03", Unseen="maritime"),
    _code("construction", "Construction: building sites, groundworks, paving, renovation",
          CTDC="typeOfLabourConstruction", ISIC="F", Polaris="Construction"),
    _code("manufacturing", "Manufacturing: factories, food packing, garment workshops",
          CTDC="typeOfLabourManufacturing", ISIC="C", Polaris="Factories & manufacturing"),
    _code("mining_quarrying", "Mining, quarrying and drilling",
          CTDC="typeOfLabourMiningOrDrilling", ISIC="B"),
    _code("hospitality", "Hospitality: hotels, restaurants, takeaways, catering",
          CTDC="typeOfLabourHospitality", ISIC="I",
          Polaris=["Restaurants & food service", "Hotels & hospitality"]),
    _code("domestic_work", "Domestic work in private homes: cleaning, childcare, live-in care",
          CTDC="typeOfLabourDomesticWork", ISIC="T", Polaris="Domestic work"),
    _code("car_wash", "Hand car washes and valeting",
          CTDC="typeOfLabourOther", ISIC="G45", Unseen="car wash (a top labour sector)"),
    _code("nail_bar_beauty", "Nail bars, beauty salons, barbers, spas",
          CTDC="typeOfLabourOther", ISIC="S96", Polaris="Health & beauty services"),
    _code("massage_parlour", "Massage premises (possibly a front for sexual services)",
          ISIC="S96", Polaris="Illicit massage, health & beauty"),
    _code("cleaning_services", "Commercial and office cleaning",
          CTDC="typeOfLabourOther", ISIC="N81", Polaris="Commercial cleaning services"),
    _code("transport_logistics", "Transport and logistics: driving, delivery, warehouses",
          CTDC="typeOfLabourTransportation", ISIC="H"),
    _code("care_sector", "Care and health: care homes, home care, health workers",
          CTDC="typeOfLabourOther", ISIC="Q", Polaris="Health care"),
    _code("retail_peddling", "Shops, market stalls, door-to-door and street selling",
          CTDC="typeOfLabourPeddling", ISIC="G",
          Polaris=["Peddling & begging", "Traveling sales crews"]),
    _code("waste_recycling", "Waste and recycling sites",
          CTDC="typeOfLabourOther", ISIC="E", Unseen="waste and recycling (emerging sector)"),
    _code("landscaping", "Gardening, landscaping, tree surgery",
          CTDC="typeOfLabourOther", ISIC="N81", Polaris="Landscaping"),
    _code("entertainment", "Arts, events, fairs and recreation",
          CTDC="typeOfLabourOther", ISIC="R",
          Polaris=["Arts & entertainment", "Carnivals", "Recreational facilities"]),
    _code("cannabis_farm", "Cannabis grow, in a house or an industrial unit",
          CTDC="typeOfLabourIllicitActivities", Polaris="Illicit activities"),
    _code("drug_supply", "Drug dealing and running, county lines, trap houses",
          CTDC="typeOfLabourIllicitActivities", Polaris="Illicit activities"),
    _code("street_begging", "Begging at a pitch",
          CTDC="typeOfLabourBegging", Polaris="Peddling & begging"),
    _code("brothel_residential", "Commercial sex in flats or houses (pop-up brothels)",
          CTDC="typeOfSexProstitution", Polaris="Residential"),
    _code("escort_hotel", "Escorting: out-call, in-call, short lets, hotels",
          CTDC="typeOfSexProstitution", Polaris="Escort services"),
    _code("online_sexual_services", "Sex advertised online: adult sites, webcam, social media",
          CTDC=["typeOfSexRemoteInteractiveServices", "typeOfSexPornography"],
          Polaris=["Remote interactive sexual acts", "Pornography"]),
    _code("street_solicitation", "Outdoor solicitation",
          CTDC="typeOfSexProstitution", Polaris="Outdoor solicitation"),
    _code("bars_clubs", "Bars, strip and lap-dancing clubs",
          CTDC=["typeOfSexProstitution", "typeOfLabourHospitality"], ISIC=["I", "R"],
          Polaris="Bars, strip clubs & cantinas"),
    _code("other", "Another sector or venue", CTDC="typeOfLabourOther"),
    _code("unknown", "Sector or venue not known", CTDC="typeOfLabourNotSpecified"),
]

_DENY = "meansDenyBasicNeeds"
_THREATS_ILO = "Intimidation and threats"
_VIOLENCE_ILO = "Physical and sexual violence"
_CONDITIONS_ILO = "Abusive working and living conditions"

CONTROL = [
    _code("debt_bondage", "Debt bondage: working off a debt that never shrinks",
          CTDC="meansOfControlDebtBondage", HTCDS="DebtBondage", ILO="Debt bondage",
          CTDC_syn="meansDebtBondageEarnings"),
    _code("wages_withheld", "Earnings kept by the exploiter, little or no pay",
          CTDC="meansOfControlTakesEarnings", HTCDS="TakesEarnings",
          ILO="Withholding of wages", CTDC_syn="meansDebtBondageEarnings"),
    _code("financial_control", "Exploiter controls the victim's bank account, cards or benefits",
          CTDC="meansOfControlRestrictsFinancialAccess", HTCDS="RestrictsFinancialAccess",
          ILO="Withholding of wages", CTDC_syn=_DENY, _unverified="CTDC-syn"),
    _code("documents_withheld", "Passport, ID or work documents taken or controlled",
          CTDC="meansOfControlWithholdsDocuments", HTCDS="WithholdsDocuments",
          ILO="Retention of identity documents", CTDC_syn="meansWithholdDocs"),
    _code("threats", "Threats of harm to the victim or their family",
          CTDC="meansOfControlThreats", HTCDS=["PhysicalThreats", "ThreatensChildrenFamily"],
          ILO=_THREATS_ILO, CTDC_syn="meansThreats"),
    _code("threat_of_authorities", "Threats of police, immigration or deportation",
          CTDC="meansOfControlThreatOfLawEnforcement", HTCDS="ThreatsLawEnforcement",
          ILO=_THREATS_ILO, CTDC_syn="meansThreats", _unverified="CTDC-syn"),
    _code("uses_children", "Control through the victim's children",
          CTDC="meansOfControlUsesChildren", HTCDS="ThreatensChildrenFamily",
          ILO=_THREATS_ILO, CTDC_syn="meansThreats", _unverified="CTDC-syn"),
    _code("physical_violence", "Physical assault or injury",
          CTDC="meansOfControlPhysicalAbuse", HTCDS="PhysicalAbuse", ILO=_VIOLENCE_ILO,
          CTDC_syn="meansAbusePsyPhySex"),
    _code("sexual_violence", "Sexual abuse used to control",
          CTDC="meansOfControlSexualAbuse", HTCDS="SexualAbuse", ILO=_VIOLENCE_ILO,
          CTDC_syn="meansAbusePsyPhySex"),
    _code("psychological_abuse", "Humiliation, manipulation, exploited emotional bonds",
          CTDC="meansOfControlPsychologicalAbuse", HTCDS="PsychologicalAbuse",
          ILO=_THREATS_ILO, CTDC_syn="meansAbusePsyPhySex"),
    _code("deception", "Lied to about the job, pay, conditions or destination",
          CTDC="meansOfControlFalsePromises", HTCDS="FalsePromises", ILO="Deception",
          CTDC_syn="meansFalsePromises"),
    _code("substance_control", "Drugs or alcohol used to keep the victim compliant",
          CTDC="meansOfControlPsychoactiveSubstances", HTCDS="PsychoactiveSubstance",
          ILO="Abuse of vulnerability", CTDC_syn="meansDrugsAlcohol"),
    _code("movement_restricted", "Confined, locked in, escorted or watched, moved often",
          CTDC="meansOfControlRestrictsMovement", HTCDS="RestrictsMovement",
          ILO="Restriction of movement", CTDC_syn=_DENY, _unverified=["CTDC-syn", "HTCDS"]),
    _code("isolation", "Cut off from family, community or language; location kept secret",
          CTDC="meansOfControlRestrictsMovement", ILO="Isolation", CTDC_syn=_DENY,
          _unverified="CTDC-syn"),
    _code("medical_care_denied", "Medical care refused or only under supervision",
          CTDC="meansOfControlRestrictsMedicalCare", HTCDS="RestrictsMedicalCare",
          ILO=_CONDITIONS_ILO, CTDC_syn=_DENY, _unverified="CTDC-syn"),
    _code("necessities_withheld", "Food, water, sleep, hygiene or clothing denied",
          CTDC="meansOfControlWithholdsNecessities", HTCDS="WithholdsNecessities",
          ILO=_CONDITIONS_ILO, CTDC_syn=_DENY),
    _code("excessive_hours", "Hours far beyond what was agreed, few or no days off",
          CTDC="meansOfControlExcessiveWorkingHours", HTCDS="ExcessiveWorkingHours",
          ILO="Excessive overtime", CTDC_syn="meansExcessiveWorkHours"),
    _code("abusive_conditions", "Degrading or dangerous work or housing (no PPE, overcrowding)",
          ILO=_CONDITIONS_ILO),
    _code("abuse_of_vulnerability",
          "Irregular status, poverty, disability, addiction, age or language exploited",
          ILO="Abuse of vulnerability"),
    _code("other_control", "Another means of control",
          CTDC="meansOfControlOther", HTCDS="Other"),
    _code("control_unknown", "Means of control not known", CTDC="meansOfControlNotSpecified"),
]

SIGN = [
    _code("controlled_by_other", "Someone else answers for them; always accompanied",
          ILO="Restriction of movement"),
    _code("injury_malnourished", "Untreated injuries, malnourished, exhausted, unkempt",
          ILO=[_VIOLENCE_ILO, _CONDITIONS_ILO]),
    _code("fearful_withdrawn", "Fearful, avoids eye contact, distrusts the authorities",
          ILO=_THREATS_ILO),
    _code("unsuitable_clothing_no_ppe", "Clothing unfit for the work or weather; no safety kit",
          ILO=_CONDITIONS_ILO),
    _code("few_possessions", "Few belongings, the same clothes every day", ILO=_CONDITIONS_ILO),
    _code("no_id_documents", "Says they cannot get at their passport or ID",
          ILO="Retention of identity documents"),
    _code("unaware_of_address", "Does not know their home or work address", ILO="Isolation"),
    _code("language_isolation", "Little or no English, no contact with a community",
          ILO="Isolation"),
    _code("transported_to_work", "Dropped off and collected, often in a crowded van, odd hours",
          ILO="Restriction of movement"),
    _code("moved_frequently", "Moved between addresses or towns often",
          ILO="Restriction of movement"),
    _code("overcrowded_housing", "Many people living in a small property", ILO=_CONDITIONS_ILO),
    _code("lives_at_workplace", "Sleeps at the workplace (back room, caravan, container)",
          ILO=_CONDITIONS_ILO),
    _code("property_secured", "Windows barred or blacked out, curtains always drawn, CCTV",
          ILO="Restriction of movement"),
    _code("high_visitor_turnover", "Many short visits day and night, mostly by men",
          source="Signs (sexual exploitation)"),
    _code("cannabis_grow", "Strong smell, bypassed electricity, condensation, heat",
          source="Signs (criminal exploitation)"),
    _code("cuckooing", "Vulnerable resident with new 'friends' and heavy traffic",
          source="Signs (criminal exploitation)"),
    _code("long_hours", "Works very long hours with no days off", ILO="Excessive overtime"),
    _code("no_pay_or_cash_only", "Workers never handle money; cash only; pay goes to another",
          ILO="Withholding of wages"),
    _code("deductions_for_housing_transport", "Rent, food or transport taken from pay",
          ILO="Debt bondage"),
    _code("very_cheap_service", "Service priced far below the market (e.g. a car wash)",
          source="Signs"),
    _code("possible_minor", "Appears to be under 18", source="Signs"),
    _code("other", "Another sign"),
    _code("unknown", "No sign described"),
]

_FINCEN = "FinCEN FIN-2020-A008"
FINANCE = [
    _code("many_wages_one_account", "Pay for several workers goes into one account",
          source=_FINCEN),
    _code("shared_identifiers", "Unrelated customers share an address, phone or email",
          source=_FINCEN),
    _code("third_party_escort", "Customer escorted by someone who speaks for them",
          source=_FINCEN),
    _code("funnel_account", "Cash paid in across regions and quickly withdrawn elsewhere",
          source=_FINCEN),
    _code("no_normal_payroll", "Business shows no normal payroll or tax costs", source=_FINCEN),
    _code("out_of_hours_cash", "Large cash deposits or card sales outside opening hours",
          source=[_FINCEN, "FINTRAC-2021-OA001"]),
    _code("adult_ad_payments", "Frequent small payments to adult or classified ad sites",
          source=["FINTRAC-2021-OA001", "FinCEN"]),
    _code("short_stays_many_cities", "Short hotel or rental stays in several cities",
          source="FINTRAC-2021-OA001"),
    _code("travel_for_others", "Buys travel tickets for several people",
          source="FINTRAC-2021-OA001"),
    _code("prepaid_crypto", "Heavy use of prepaid cards, crypto or third-party processors",
          source=["FinCEN", "FINTRAC-2021-OA001"]),
    _code("structuring", "Cash kept just under reporting thresholds", source="FinCEN"),
    _code("recruitment_visa_fees", "Recruitment, visa or placement fees charged to workers",
          source="FinCEN (exploitative employment practices)"),
    _code("account_controlled_by_other",
          "Victim's account opened or run by another; wages moved straight on",
          CTDC="meansOfControlRestrictsFinancialAccess", source=_FINCEN),
    _code("other", "Another financial red flag"),
    _code("unknown", "Financial details not known"),
]

RECRUITMENT = [
    _code("job_offer_deceptive", "False or misrepresented job offer",
          CTDC="meansOfControlFalsePromises", source="Unseen"),
    _code("online_advert", "Online job or other advert", HTCDS="ThroughAnOnlineAdvertisement"),
    _code("social_media_messaging", "Contact through social networks or messaging apps",
          HTCDS="ThroughOnlineSocialNetworks"),
    _code("print_broadcast_advert", "Newspaper or TV advert",
          HTCDS=["ThroughANewspaperAdvert", "ThroughATelevisionAdvert"]),
    _code("agency_or_broker", "Labour provider, agent or travel broker, often charging fees",
          HTCDS=["RecruiterOrIntermediary", "BrokerTravelAgent"], source="FinCEN"),
    _code("migration_facilitation", "Offer of travel, visa or smuggling that turned exploitative",
          source=["FATF", "FINTRAC"]),
    _code("romance_intimate_partner", "Feigned romance or intimate partner ('loverboy')",
          CTDC="recruiterRelationIntimatePartner", source="UNODC GLOTiP 2014"),
    _code("family", "Recruited or sold by a family member",
          CTDC="recruiterRelationFamily", HTCDS="ThroughFamilyOrFamilyEvents"),
    _code("friend_acquaintance", "Recruited through friends or social events",
          CTDC="recruiterRelationFriend", HTCDS="ThroughFriendsOrSocialEvents"),
    _code("approached_when_vulnerable",
          "Approached at a shelter, food bank, on the street or in addiction",
          source=["Unseen", "UK criminal exploitation guidance"]),
    _code("at_education", "Recruited at school or college", HTCDS="AtAnEducationalInstitution"),
    _code("at_work_or_business", "Recruited at work or a place of business",
          HTCDS=["AtWork", "AtAPlaceOfBusiness"]),
    _code("grooming_gifts_status", "Drawn in with gifts, money, drugs or status",
          source="gov.uk county lines guidance"),
    _code("abduction", "Taken by force", CTDC="isAbduction"),
    _code("sale_transfer", "Sold or transferred between exploiters",
          HTCDS=["SoldIndividual", "BoughtIndividual", "TransferredIndividual"]),
    _code("other", "Another recruitment method"),
    _code("unknown", "Recruitment method not known"),
]

RECRUITER_RELATION = [
    _code("intimate_partner", "Intimate partner", CTDC="recruiterRelationIntimatePartner"),
    _code("family", "Family member", CTDC="recruiterRelationFamily", HTCDS="Familial"),
    _code("friend", "Friend", CTDC="recruiterRelationFriend", HTCDS="Acquainted"),
    _code("acquaintance", "Acquaintance", HTCDS="Acquainted"),
    _code("employer_or_agent", "Employer or recruitment agent"),
    _code("stranger", "Stranger", HTCDS="Unaquainted"),
    _code("other", "Another relation"),
    _code("unknown", "Relation not known", CTDC="recruiterRelationUnknown"),
]

# HTCDS RecruitmentWebsitesAndApps; the same list serves for the platform used to exploit.
_PLATFORMS = [
    ("facebook", "Facebook"), ("instagram", "Instagram"), ("whatsapp", "WhatsApp"),
    ("telegram", "Telegram"), ("facebook_messenger", "Facebook Messenger"), ("viber", "Viber"),
    ("snapchat", "Snapchat"), ("line", "LINE"), ("4sale", "4Sale"), ("wechat", "WeChat"),
    ("qq", "QQ"), ("qzone", "Qzone"), ("tiktok", "TikTok"), ("twitter_x", "X (Twitter)"),
    ("other", "Another platform"),
]
PLATFORM = [
    _code(code, label, source="HTCDS RecruitmentWebsitesAndApps") for code, label in _PLATFORMS
] + [_code("unknown", "Platform not known")]

CODES: dict[str, list[tuple[str, str, dict]]] = {
    "type": TYPE,
    "sector": SECTOR,
    "control": CONTROL,
    "sign": SIGN,
    "finance": FINANCE,
    "recruitment": RECRUITMENT,
    "recruiter_relation": RECRUITER_RELATION,
    "platform": PLATFORM,
}


def seed_rows() -> list[dict]:
    """Rows for `tag_codes`, in the order of the vocabulary (position counts per dimension)."""
    return [
        {"dimension": dimension, "code": code, "label": label, "crosswalk": crosswalk,
         "position": position}
        for dimension, codes in CODES.items()
        for position, (code, label, crosswalk) in enumerate(codes)
    ]
