"""Words printed around the numbers: table titles, column headers and prose, in Latin and in
the vernaculars of the period (Italian, French, German, Spanish). Words only, never digits."""

from __future__ import annotations

TITLES = {
    "climate": {
        "latin": "Tabula climatum", "italian": "Tavola de i climi",
        "french": "Table des climats", "german": "Tafel der Climaten",
        "spanish": "Tabla de los climas",
    },
    "declination": {
        "latin": "Tabula declinationis solis", "italian": "Tavola della declinatione del sole",
        "french": "Table de la declinaison du soleil", "german": "Tafel der Abweichung der Sonnen",
        "spanish": "Tabla de la declinacion del sol",
    },
    "right_ascension": {
        "latin": "Tabula ascensionum rectarum", "italian": "Tavola delle ascensioni rette",
        "french": "Table des ascensions droites", "german": "Tafel der geraden Aufsteigung",
        "spanish": "Tabla de las ascensiones rectas",
    },
    "sine": {
        "latin": "Canon sinuum", "italian": "Tavola de i seni", "french": "Table des sinus",
        "german": "Tafel der Sinus", "spanish": "Tabla de los senos",
    },
    "chord": {
        "latin": "Canon chordarum", "italian": "Tavola delle corde",
        "french": "Table des cordes", "german": "Tafel der Sehnen",
        "spanish": "Tabla de las cuerdas",
    },
    "mean_motion": {
        "latin": "Tabula medii motus", "italian": "Tavola del moto mezzano",
        "french": "Table du moyen mouvement", "german": "Tafel der mittlern Bewegung",
        "spanish": "Tabla del movimiento medio",
    },
}

#: Column group headers; sign names and planet names stay Latin in every language, as in print.
GROUPS = {
    "latin": {"climate": "Clima", "longest day": "Dies max.", "latitude": "Latitudo",
              "degree": "Gradus", "arc": "Arcus", "sine": "Sinus", "chord": "Chorda",
              "days": "Dies", "periods": "Anni"},
    "italian": {"climate": "Clima", "longest day": "Il mag. di", "latitude": "Altez. del po.",
                "degree": "Gradi", "arc": "Arco", "sine": "Seno", "chord": "Corda",
                "days": "Giorni", "periods": "Anni"},
    "french": {"climate": "Climat", "longest day": "Plus long iour", "latitude": "Haulteur",
               "degree": "Degrez", "arc": "Arc", "sine": "Sinus", "chord": "Corde",
               "days": "Iours", "periods": "Ans"},
    "german": {"climate": "Clima", "longest day": "Lengster tag", "latitude": "Polhöhe",
               "degree": "Grad", "arc": "Bogen", "sine": "Sinus", "chord": "Sehne",
               "days": "Tag", "periods": "Jar"},
    "spanish": {"climate": "Clima", "longest day": "Dia mayor", "latitude": "Altura",
                "degree": "Grados", "arc": "Arco", "sine": "Seno", "chord": "Cuerda",
                "days": "Dias", "periods": "Años"},
}

UNITS = {
    "latin": {"G": "G.", "M": "M.", "H": "H.", "S": "S.", "P": "P.", "2a": "2a"},
    "italian": {"G": "G.", "M": "M.", "H": "H.", "S": "S.", "P": "P.", "2a": "2a"},
    "french": {"G": "Deg.", "M": "Mi.", "H": "H.", "S": "Sig.", "P": "P.", "2a": "Sec."},
    "german": {"G": "Gr.", "M": "Mi.", "H": "St.", "S": "Zei.", "P": "Th.", "2a": "Se."},
    "spanish": {"G": "Gr.", "M": "Mi.", "H": "Ho.", "S": "Si.", "P": "P.", "2a": "Se."},
}

ROW_LABELS = {
    "latin": {"principium": "Principium", "medium": "Medium", "finis": "Finis"},
    "italian": {"principium": "Principio", "medium": "Mezzo", "finis": "Fine"},
    "french": {"principium": "Commencement", "medium": "Milieu", "finis": "Fin"},
    "german": {"principium": "Anfang", "medium": "Mittel", "finis": "End"},
    "spanish": {"principium": "Principio", "medium": "Medio", "finis": "Fin"},
}

#: Words for prose pages (a Sacrobosco-like Latin vocabulary).
PROSE_WORDS = (
    "sphaera", "circulus", "zodiacus", "sol", "luna", "stellae", "caelum", "terra", "orbis",
    "motus", "aequinoctialis", "meridianus", "horizon", "polus", "arcticus", "antarcticus",
    "signum", "gradus", "climata", "ortus", "occasus", "dies", "nox", "latitudo", "longitudo",
    "et", "in", "est", "quod", "sicut", "autem", "vero", "enim", "qui", "quae", "ad", "per",
    "cum", "ab", "super", "sub", "inter", "secundum", "dicitur", "vocatur", "mundi", "partes",
    "Ptolemaeus", "Alfraganus", "Sacrobosco", "eclipsis", "umbra", "tropicus", "cancri",
    "capricorni", "colurus", "linea", "ecliptica", "declinatio", "ascensio", "recta", "obliqua",
)
