"""The words behind intent suggestions, per language (en, fr, de, es).

Every pattern runs on lower-case text without accents (see intent.fold), so "décaler" is
written "decaler" here. Patterns are narrow on purpose: a suggestion the consultant cannot
trust is worse than none, so each one names a phrase that carries the intent on its own, or
needs a second signal (an object, a written date, the stage the reply answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _re(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


@dataclass(frozen=True)
class Rules:
    """One language's patterns; each is searched in accent-folded, lower-case text."""

    stopwords: frozenset[str]
    date_strong: re.Pattern[str]      # asks to move a date by itself
    date_weak: re.Pattern[str]        # ... only with a date written in the reply
    date_target: re.Pattern[str]      # "to", "au", "auf", "al": the new date follows
    problem: re.Pattern[str]          # missing / empty / broken ...
    no_problem: re.Pattern[str]       # "nothing is missing": masked before `problem`
    thing: re.Pattern[str]            # what a deliverable problem is about (folder, link...)
    invoice: re.Pattern[str]
    paid: re.Pattern[str]
    invoice_query: re.Pattern[str]
    access: re.Pattern[str]
    keep_open: re.Pattern[str]
    revoked: re.Pattern[str]
    support: re.Pattern[str]
    support_no: re.Pattern[str]       # masked before support_yes ("not interested")
    support_yes: re.Pattern[str]
    feedback: re.Pattern[str]
    thanks: re.Pattern[str]
    deferral: re.Pattern[str]         # "I'll get back to you": not a sign-off


_W = r"(?:[\w'-]+\s+)"  # one word and its space, for "{0,3}" gaps

RULES: dict[str, Rules] = {
    "en": Rules(
        stopwords=_words("""the and is to we you it of for that have this with please can
            could would our are on in be was will your thanks thank hi i my me not do does got
            let all there what who"""),
        date_strong=_re(r"\bpostpon\w*", r"\bre-?schedul\w*", rf"\bpush(?:ing)?\s+{_W}{{0,4}}"
                        r"(?:back|out)\b", r"\bbring\s+(?:it|the\s+\w+)\s+forward\b",
                        r"\b(?:a\s+later|another|a\s+different|a\s+new)\s+(?:date|day)\b",
                        rf"\bmov(?:e|ing)\s+(?:the|our|it|this|that)\s+{_W}{{0,3}}"
                        r"(?:to|by|back|forward)\b", r"\bshift\s+(?:the|our|it)\b"),
        date_weak=_re(r"\b(?:doesn'?t|does\s+not|won'?t|will\s+not|wouldn'?t)\s+(?:work|suit)"
                      r"\s+for\s+(?:us|me)\b", r"\binstead\b",
                      r"\bcan'?t\s+make\s+(?:it|that)\b", r"\bslip\w*", r"\bslid(?:e|ing)\b",
                      r"\bchang(?:e|ed|ing)\s+(?:the\s+)?(?:date|day)\b"),
        date_target=_re(r"\b(?:to|until|for|instead)\s+(?:the\s+)?(?:week\s+of\s+)?$"),
        problem=_re(r"(?<!will be )(?<!'ll be )\bmissing\b", r"\b(?:is|are)\s+empty\b",
                    r"\bempty\s+(?:folder|file|link)", r"\bcan'?t\s+find\b",
                    r"\b(?:cannot|couldn'?t|could\s+not|unable\s+to)\s+find\b",
                    r"\b(?:can'?t|won'?t|doesn'?t|does\s+not|will\s+not)\s+(?:open|load)\b",
                    r"\bnot\s+(?:working|loading|opening)\b", r"\bbroken\b", r"\bcorrupt\w*",
                    r"\b404\b", r"\baccess\s+denied\b", r"\bwrong\s+(?:version|file)\b",
                    r"\bincomplete\b", r"\b(?:isn'?t|aren'?t|is\s+not|are\s+not)\s+there\b",
                    r"\b(?:are|is)\s+blank\b"),
        no_problem=_re(r"\bnothing\s+(?:is\s+|was\s+|seems\s+)?missing\b",
                       r"\bnone\s+(?:is|are)\s+missing\b"),
        thing=_re(r"\b(?:folder|file|document|doc|link|recording|video|slides|deck|pdf|runbook"
                  r"|report|repo|repository|code|dashboard|pipelines?|deliverables?|notebook"
                  r"|spreadsheet)s?\b"),
        invoice=_re(r"\binvoices?\b", r"\bbill\b", r"\bpayment\b", r"\bremittance\b"),
        paid=_re(r"\b(?:paid|settled|transferred|wired|remitted)\b",
                 r"\bpayment\s+(?:has\s+been\s+|was\s+)?(?:made|sent|processed|released)\b"),
        invoice_query=_re(r"\b(?:doesn'?t|does\s+not|don'?t)\s+match\b", r"\bwrong\b",
                          r"\bincorrect\b", r"\bdiscrepanc", r"\bquery\b", r"\bquestion\b",
                          r"\bpo\s+number\b", r"\bpurchase\s+order\b", r"\bcredit\s+note\b",
                          r"\bre-?send\b", r"\bcopy\s+of\b",
                          r"\b(?:haven'?t|have\s+not|not)\s+(?:yet\s+)?(?:received|got)\b",
                          r"\bclarif", r"\bbreakdown\b"),
        access=_re(r"\b(?:access|accounts?|permissions?|github|aws|logins?|credentials|vpn"
                   r"|admin\s+rights)\b"),
        keep_open=_re(rf"\bkeep\s+{_W}{{0,4}}(?:open|active|enabled|a\s+bit\s+longer|until)\b",
                      rf"\bextend\s+{_W}{{0,3}}access\b",
                      r"\bhold\s+off\s+(?:on\s+)?(?:removing|revoking|the\s+removal)\b",
                      r"\b(?:don'?t|do\s+not)\s+(?:remove|revoke|disable)\b",
                      rf"\bstill\s+need\s+{_W}{{0,3}}access\b",
                      rf"\bleave\s+{_W}{{0,4}}(?:open|active|in\s+place)\b"),
        revoked=_re(r"\b(?:has|have|was|were|is|are)\s+(?:already\s+)?(?:been\s+)?"
                    r"(?:removed|revoked|disabled|deactivated|deleted|closed)\b",
                    r"\bwe'?ve\s+(?:already\s+)?(?:removed|revoked|disabled|deactivated)\b"),
        support=_re(r"\bsupport\b", r"\bretainer\b", r"\bmaintenance\b",
                    r"\bongoing\s+help\b", r"\bhours\s+(?:a|per)\s+month\b"),
        support_no=_re(r"\bno,?\s+thanks?\b", r"\bnot\s+(?:interested|needed|at\s+this\s+time"
                       r"|right\s+now|for\s+now|at\s+the\s+moment)\b",
                       r"\bwe'?ll\s+pass\b", r"\bwe\s+will\s+pass\b", r"\bpass\s+on\b",
                       r"\b(?:don'?t|do\s+not|won'?t|will\s+not)\s+need\b", r"\bno\s+need\b",
                       r"\bdeclin\w*", r"\bhandle\s+it\s+(?:in-house|internally)\b"),
        support_yes=_re(r"\byes\b", r"\binterested\b", r"\bsounds\s+(?:good|great|right|about"
                        r"\s+right)\b", r"\blet'?s\s+(?:talk|discuss|do\s+it|go\s+ahead|set)\b",
                        r"\bwe(?:'d|\s+would)\s+(?:like|love|be\s+interested)\b",
                        r"\bhappy\s+to\s+(?:go\s+ahead|proceed|sign)\b", r"\bcount\s+us\s+in\b",
                        r"\bsign\s+us\s+up\b"),
        feedback=_re(r"\b(?:great|excellent|fantastic|solid)\s+(?:work|job|experience"
                     r"|collaboration)\b", r"\b(?:really|very|extremely)\s+(?:happy|pleased"
                     r"|satisfied)\b", r"\b(?:happy|pleased|satisfied)\s+with\b",
                     r"\benjoyed\s+working\b", r"\brecommend\b", r"\bthe\s+best\s+part\b",
                     r"\bcould\s+have\s+been\s+better\b", r"\bwould\s+have\s+liked\b",
                     r"\broom\s+for\s+improvement\b", r"\bwent\s+(?:really\s+)?well\b"),
        thanks=_re(r"\bthanks?\b", r"\bthank\s+you\b", r"\bcheers\b", r"\bmuch\s+appreciated\b",
                   r"\bgot\s+it\b", r"\breceived\b", r"\bnoted\b", r"\ball\s+good\b",
                   r"\blooks\s+good\b", r"\ball\s+the\s+best\b"),
        deferral=_re(r"\bget\s+back\s+to\s+you\b", r"\blet\s+me\s+(?:check|discuss|see|look)\b",
                     r"\bi'?ll\s+(?:check|review|look|discuss|go\s+through)\b",
                     r"\bforward(?:ing)?\b", r"\bwill\s+(?:check|review|discuss)\b"),
    ),
    "fr": Rules(
        stopwords=_words("""le la les et est nous vous je pour pas que des une un merci avec
            sur dans bonjour ce de du au aux votre notre tout qui ne il elle"""),
        date_strong=_re(r"\bdecal\w*", r"\breport(?:er|e|ee|ons|ez|erait|erions)\b",
                        r"\brepouss\w*", r"\bdeplac(?:er|ons|ez|erait|e|ee)\b",
                        r"\bavancer\s+(?:la|le|notre)\b", r"\bchanger\s+(?:la|de)\s+date\b",
                        r"\b(?:une\s+autre|une\s+nouvelle)\s+date\b", r"\breprogramm\w*"),
        date_weak=_re(r"\bne\s+(?:nous|me)\s+convient\s+pas\b", r"\bne\s+convient\s+pas\b",
                      r"\bplutot\b", r"\ba\s+la\s+place\b", r"\bpasser\s+au\b", r"\bglisser\b"),
        date_target=_re(r"\b(?:au|a|pour|jusqu'au|le|faire\s+le)\s+$"),
        problem=_re(r"\bmanqu\w*", r"\bvides?\b", r"\bintrouvable\w*",
                    r"\bne\s+(?:trouve|trouvons|trouvez)\s+pas\b",
                    r"\bne\s+s'ouvre\s+pas\b", r"\bne\s+(?:fonctionne|marche)\s+pas\b",
                    r"\bcasse\w*", r"\bcorrompu\w*", r"\b404\b", r"\bincomplet\w*",
                    r"\bmauvaise\s+version\b", r"\bsont\s+blanches\b"),
        no_problem=_re(r"\brien\s+ne\s+manque\b", r"\bne\s+manque\s+rien\b"),
        thing=_re(r"\b(?:dossier|fichier|document|lien|enregistrement|video|support|diapos"
                  r"|pdf|guide|rapport|depot|code|tableau\s+de\s+bord|livrables?|pipelines?)s?\b"),
        invoice=_re(r"\bfactures?\b", r"\bpaiement\b", r"\breglement\b"),
        paid=_re(r"\b(?:a|ont|avons|est|sont)\s+(?:bien\s+)?(?:ete\s+)?(?:reglee?s?|payee?s?"
                 r"|viree?s?|acquittee?s?)\b", r"\bvirement\s+(?:a\s+ete\s+)?effectue\b"),
        invoice_query=_re(r"\bquestion\b", r"\bne\s+correspond\s+pas\b", r"\berreur\b",
                          r"\berrone\w*", r"\bincorrect\w*", r"\bbon\s+de\s+commande\b",
                          r"\bun\s+avoir\b", r"\brenvoy\w*", r"\bcopie\b",
                          r"\bpas\s+(?:encore\s+)?recu\b", r"\bprecision\w*"),
        access=_re(r"\b(?:acces|comptes?|droits|github|aws|vpn|identifiants)\b"),
        keep_open=_re(r"\b(?:garder|conserver|maintenir|prolonger)\b",
                      rf"\blaisser\s+{_W}{{0,3}}(?:ouvert|actif)\w*",
                      r"\bne\s+pas\s+(?:retirer|supprimer|couper|desactiver)\b",
                      r"\bencore\s+besoin\b"),
        revoked=_re(r"\b(?:a|ont|avons)\s+(?:deja\s+)?(?:ete\s+)?(?:supprime|retire|desactive"
                    r"|revoque|ferme)\w*"),
        support=_re(r"\baccompagnement\b", r"\bsupport\b", r"\bmaintenance\b", r"\bforfait\b",
                    r"\btma\b", r"\bcontrat\s+de\s+service\b"),
        support_no=_re(r"\bnon,?\s+merci\b", r"\bpas\s+(?:besoin|interesse\w*|pour\s+le\s+moment"
                       r"|pour\s+l'instant|maintenant)\b", r"\bn'avons\s+pas\s+besoin\b",
                       r"\bne\s+sommes\s+pas\s+interess\w*", r"\ben\s+interne\b",
                       r"\bdeclin\w*"),
        support_yes=_re(r"\boui\b", r"\binteress\w*", r"\bvolontiers\b", r"\bavec\s+plaisir\b",
                        r"\bpartants?\b", r"\bnous\s+aimerions\b", r"\bparlons-en\b",
                        r"\ballons-y\b"),
        feedback=_re(r"\b(?:excellent|bon|tres\s+bon|beau)\s+travail\b",
                     r"\b(?:tres|vraiment)\s+(?:satisfait|content|ravi)\w*", r"\brecommand\w*",
                     r"\bpoints?\s+forts?\b", r"\bpoints?\s+d'amelioration\b",
                     r"\ba\s+ameliorer\b", r"\baurions\s+aime\b", r"\baurait\s+pu\b",
                     r"\bbravo\b"),
        thanks=_re(r"\bmerci\b", r"\bbien\s+recu\b", r"\bparfait\b", r"\bc'est\s+note\b",
                   r"\btout\s+est\s+bon\b", r"\bbonne\s+continuation\b"),
        deferral=_re(r"\breviens\s+vers\s+vous\b", r"\breviendrai\b",
                     r"\bje\s+(?:regarde|transfere|vais)\b", r"\bnous\s+regardons\b"),
    ),
    "de": Rules(
        stopwords=_words("""der die das und ist wir sie ich nicht mit fur den ein eine danke
            bitte auf noch uns es dem zu im bei hallo du dich dir ihr euch"""),
        date_strong=_re(r"\bverschieb\w*", r"\bverschob\w*", r"\bverleg\w*", r"\bvorzieh\w*",
                        r"\bnach\s+hinten\b", r"\b(?:einen\s+)?(?:anderen|neuen)\s+termin\b",
                        r"\bumplan\w*"),
        date_weak=_re(r"\bpasst\s+(?:uns|mir)\s+(?:leider\s+)?nicht\b",
                      r"\bgeht\s+(?:bei\s+uns|uns|mir)\s+(?:leider\s+)?nicht\b",
                      r"\bstattdessen\b", r"\brutsch\w*", r"\bander(?:n|t)\b"),
        date_target=_re(r"\b(?:auf|zum|bis|den|der|am)\s+(?:den\s+)?$"),
        problem=_re(r"\bfehl(?:t|en)\b", r"\bleer\b", r"\bnicht\s+(?:zu\s+)?finden\b",
                    rf"\bfinde\s+{_W}{{0,4}}(?:nicht|nirgends)\b", r"\bnirgends\b",
                    r"\boffnet\s+(?:sich\s+)?nicht\b", r"\blasst\s+sich\s+nicht\s+offnen\b",
                    r"\bfunktioniert\s+nicht\b", r"\bkaputt\b", r"\bdefekt\b",
                    r"\bbeschadigt\b", r"\bunvollstandig\b", r"\bfalsche\s+version\b",
                    r"\b404\b"),
        no_problem=_re(r"\bfehlt\s+nichts\b", r"\bnichts\s+fehlt\b"),
        thing=_re(r"\b(?:ordner|datei|dokument|link|aufzeichnung|video|folien|pdf|\w*handbuch"
                  r"|bericht|repo|repository|code|dashboard|pipelines?|ergebnis\w*|unterlagen"
                  r"|lieferung\w*)\b"),
        invoice=_re(r"\brechnung\w*", r"\bzahlung\b", r"\buberweisung\b"),
        paid=_re(r"\bbezahlt\b", r"\bbeglichen\b", r"\buberwiesen\b", r"\bangewiesen\b",
                 r"\bzahlung\s+(?:ist\s+)?(?:raus|erfolgt|veranlasst)\b"),
        invoice_query=_re(r"\bfrage\b", r"\bstimmt\s+nicht\b", r"\bfalsch\b", r"\bfehlerhaft\b",
                          r"\bbestell\w*", r"\bgutschrift\b", r"\berneut\b", r"\bkopie\b",
                          r"\bnicht\s+erhalten\b"),
        access=_re(r"\b(?:zugang|zugange|zugriff\w*|konto|account|rechte|berechtigung\w*"
                   r"|github|aws|vpn)\b", r"-zugang\b"),
        keep_open=_re(r"\boffen\s*lassen\b", r"\baktiv\s+lassen\b", r"\bbehalten\b",
                      r"\bverlanger\w*", r"\bnoch\s+nicht\s+(?:sperren|entfernen)\b",
                      r"\bnicht\s+(?:sperren|entfernen|deaktivieren)\b"),
        revoked=_re(rf"\b(?:bereits|schon)\s+{_W}{{0,3}}(?:entfernt|gesperrt|deaktiviert"
                    r"|geloscht|entzogen)\b", rf"\b(?:wurde|wurden|ist|sind|haben|hat)\s+"
                    rf"{_W}{{0,4}}(?:entfernt|gesperrt|deaktiviert|geloscht|entzogen)\b"),
        support=_re(r"\bsupport\w*", r"\bwartung\w*", r"\bbetreuung\b", r"\bretainer\b",
                    r"\bstundenkontingent\b", r"-vertrag\b"),
        support_no=_re(r"\bnein,?\s+danke\b", r"\bkein(?:en)?\s+bedarf\b",
                       rf"\b(?:brauchen|benotigen)\s+(?:wir\s+)?{_W}{{0,3}}(?:nicht|kein\w*)\b",
                       r"\bnicht\s+interessiert\b", r"\bverzichten\b", r"\bintern\b"),
        support_yes=_re(r"\bja\b", r"\binteressiert\b", r"\bgerne?\b", r"\bklingt\s+gut\b",
                        r"\bmochten\s+wir\b", r"\bnehmen\s+wir\b"),
        feedback=_re(r"\b(?:tolle|gute|super|hervorragende)\s+arbeit\b", r"\bsehr\s+zufrieden\b",
                     r"\bweiterempfehl\w*", r"\bempfehlen\b", r"\bhatte\s+besser\b",
                     rf"\bhatten\s+uns\s+{_W}{{0,4}}gewunscht\b", r"\bverbesser\w*",
                     r"\bdas\s+beste\b", r"\bbesonders\s+gut\b"),
        thanks=_re(r"\bdanke\b", r"\bvielen\s+dank\b", r"\bbesten\s+dank\b",
                   r"\bherzlichen\s+dank\b", r"\berhalten\b", r"\balles\s+klar\b",
                   r"\bperfekt\b", r"\balles\s+gute\b", r"\bpasst\s+so\b"),
        deferral=_re(r"\bmelde\s+mich\b", r"\bmelden\s+uns\b", r"\bgehe\s+(?:das\s+)?\w*\s*"
                     r"\w*\s*durch\b", r"\bbespreche\w*", r"\bleite\b", r"\bschaue\w*"),
    ),
    "es": Rules(
        stopwords=_words("""el la los las y es que para por con no una un gracias muy del se
            lo esta hola nos nuestro nuestra te tu de al su"""),
        date_strong=_re(r"\baplaz\w*", r"\bpospon\w*", r"\bpospuest\w*", r"\breprogram\w*",
                        r"\bretras(?:ar|arlo|arla|emos|ad)\b", r"\badelant(?:ar\w*|emos)\b",
                        r"\bmover\s+(?:el|la|los|las)\b", r"\bmover(?:lo|la)\b",
                        r"\bcambiar\s+(?:la|de)\s+fecha\b", r"\b(?:otra|nueva)\s+fecha\b"),
        date_weak=_re(r"\bno\s+(?:nos|me)\s+(?:viene|va)\s+bien\b", r"\bno\s+nos\s+cuadra\b",
                      r"\ben\s+su\s+lugar\b", r"\bpodriamos\s+hacerlo\b", r"\bpasar\s+al\b",
                      r"\bcambiar\b"),
        date_target=_re(r"\b(?:al|el|para|hasta)\s+$"),
        problem=_re(r"(?<!hace )(?<!haria )\bfalta\w*", r"\bvaci[ao]s?\b",
                    r"\bno\s+(?:encuentro|encontramos|encuentra)\b", r"\bno\s+se\s+abre\b",
                    r"\bno\s+funciona\b", r"\brot[oa]s?\b", r"\bdanad[oa]s?\b",
                    r"\bcorrupt[oa]s?\b", r"\bincomplet[oa]s?\b",
                    r"\bversion\s+(?:equivocada|incorrecta)\b", r"\b404\b", r"\bda\s+error\b",
                    r"\ben\s+blanco\b"),
        no_problem=_re(r"\bno\s+falta\s+nada\b", r"\bnada\s+falta\b"),
        thing=_re(r"\b(?:carpeta|archivo|fichero|documento|enlace|link|grabacion|video"
                  r"|diapositivas|pdf|manual|informe|repositorio|repo|codigo|panel|dashboard"
                  r"|pipelines?|entregables?)s?\b"),
        invoice=_re(r"\bfacturas?\b", r"\bpago\b", r"\babono\b"),
        paid=_re(r"\bpagad[oa]s?\b", r"\babonad[oa]s?\b", r"\bhemos\s+pagado\b",
                 r"\btransferencia\s+(?:realizada|hecha|enviada)\b"),
        invoice_query=_re(r"\bconsulta\b", r"\bpregunta\b", r"\bno\s+coincide\b",
                          r"\bincorrect\w*", r"\berror\b", r"\borden\s+de\s+compra\b",
                          r"\bnota\s+de\s+credito\b", r"\breenvi\w*", r"\bcopia\b",
                          r"\bno\s+(?:hemos\s+)?recibido\b"),
        access=_re(r"\b(?:accesos?|cuentas?|permisos|credenciales|github|aws|vpn)\b"),
        keep_open=_re(r"\b(?:mantener|conservar|ampliar|prorrogar)\b",
                      rf"\bdejar\s+{_W}{{0,3}}(?:abierto|activo)s?\b",
                      r"\bno\s+(?:retir|quit|elimin|desactiv)\w*",
                      rf"\b(?:todavia|aun)\s+{_W}{{0,3}}necesit\w*"),
        revoked=_re(rf"\b(?:ha|han|hemos)\s+{_W}{{0,2}}(?:eliminad|retirad|desactivad|revocad"
                    r"|cerrad|borrad)[oa]s?\b"),
        support=_re(r"\bsoporte\b", r"\bmantenimiento\b", r"\bacompanamiento\b",
                    r"\bbolsa\s+de\s+horas\b", r"\bretainer\b", r"\bcontrato\s+de\s+servicio\b"),
        support_no=_re(r"\bno,?\s+gracias\b", r"\bno\s+necesitamos\b", r"\bno\s+nos\s+interesa\b",
                       r"\b(?:por\s+ahora|de\s+momento|ahora\s+mismo)\s+no\b",
                       r"\bno\s+(?:contrataremos|vamos\s+a\s+contratar)\b",
                       r"\bequipo\s+interno\b", r"\binternamente\b"),
        support_yes=_re(r"\bsi[,.!]", r"\bnos\s+interesa\b", r"\binteresad[oa]s\b",
                        r"\bnos\s+gustaria\b", r"(?<!mas )\badelante\b", r"\bcon\s+gusto\b",
                        r"\b(?:nos|me)\s+parece\s+bien\b"),
        feedback=_re(r"\b(?:excelente|buen|gran)\s+trabajo\b",
                     r"\bmuy\s+(?:content|satisfech)\w*", r"\brecomendar\w*",
                     r"\brecomendaria\w*", r"\blo\s+mejor\s+fue\b", r"\ba\s+mejorar\b",
                     r"\bnos\s+hubiera\s+gustado\b", r"\bpodria\s+haber\s+sido\s+mejor\b"),
        thanks=_re(r"\bgracias\b", r"\brecibido\b", r"\bperfecto\b", r"\btodo\s+bien\b",
                   r"\bmucha\s+suerte\b"),
        deferral=_re(r"\b(?:te|le|os)\s+(?:digo|respondo|contesto|comento|aviso)\b",
                     r"\blo\s+(?:reviso|revisamos|comentare|comento)\b", r"\breenvio\b"),
    ),
}
