"""A held-out check of the PERSON rules: 20 sentences with names and shapes that neither the
rules' author nor bench/redaction_quality.py used (written by another session after the rules
were done, 2026-12-07), so it says how the rules do on text they were not tuned on. Two rules
were later fitted to set 1's misses; set 2 was written after them, as its new held-out part.
Set 3 (25 sentences, 6 must-keep lines) was written in stop 25 before it was first run: 51 of
52 name tokens went and every must-keep word stayed; its one miss ("Frau Mai Linh Pham": a
month read as the month after Frau) was fixed then. Set 4 (25 sentences, 6 must-keep lines),
written after that and before its first run: 45 of 50 name tokens (0.900), must-keep 45/45 in
all; its misses (an @-mention, "Hi Ngozi and Chinonso,", "Familie Hashemi") were then fixed,
not "– Farah was out sick" (one unknown word in running English). Set 5 (20 sentences, 5
must-keep lines), written after those fixes and before its first run: 36 of 38 (0.947),
must-keep 57/57 in all; its miss, a sign-off in lower case ("gruß, heiko zenker"), was then
fixed. Set 6 (15 sentences, 5 must-keep lines), written after that fix and before its
first run: 31 of 31, must-keep 67/67 in all. Set 7 (20 sentences, 6 must-keep lines), written
in stop 26 before its first run: 32 of 39 (0.821), must-keep 77/77 in all; its misses (Romanian
"Ionuț", a form in capitals, "Jun Wei said", "Ayodele's laptop") were then fixed. Set 8 (18
sentences, 6 must-keep lines), written after those fixes and before its first run: 38 of 42
(0.905), and two must-keep words went ("im Auftrag von Landratsamt Meißen" read as a closing
and a name); "on behalf of Abdirahman Warsame" and that closing line were then fixed, not
"Nagy Zsófia" (surname first, the surname a word of the English list). Add set 9 before
changing a rule for set 8.
Prints the share of name tokens removed and which were left; keep it untuned (add cases,
don't fit rules to them without writing new ones here).

    .venv/bin/python bench/redaction_holdout.py
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_settings
from gateway.pipeline.prepare import shared_redactor
from gateway.redaction.placeholders import KeyedPseudonyms

ROOT = Path(__file__).resolve().parent.parent
settings = load_settings(ROOT / "config.example.yaml")
red = shared_redactor(settings)
assert red is not None

# (text, the name tokens that must not be left)
CASES: list[tuple[str, list[str]]] = [
    (
        'Guten Tag, mein Drucker im Zimmer 2.14 geht nicht. Viele Grüße Wenke Tschirner',
        ['Wenke', 'Tschirner'],
    ),
    (
        'Hallo zusammen,\nFrau Oelsner aus der Kämmerei kann sich nicht anmelden.\n'
        'Gruß\nBenno Rudolph',
        ['Oelsner', 'Benno', 'Rudolph'],
    ),
    (
        'Sehr geehrte Damen und Herren,\nich, Oksana Melnychuk, beantrage einen neuen Zugang.\n'
        'Mit freundlichen Grüßen\nOksana Melnychuk',
        ['Oksana', 'Melnychuk'],
    ),
    (
        'Bitte richten Sie für Herrn Thanh Tung Dang einen Arbeitsplatz ein.',
        ['Thanh', 'Tung', 'Dang'],
    ),
    (
        'Teilnehmer: Eike Gläßer, Ronja Zippel, Taras Bondarenko, Leyla Aksu',
        ['Gläßer', 'Zippel', 'Bondarenko', 'Aksu', 'Eike', 'Ronja', 'Taras', 'Leyla'],
    ),
    (
        'Cc: Wiesław Dąbrowski; Grażyna Wójcik',
        ['Dąbrowski', 'Wójcik', 'Wiesław', 'Grażyna'],
    ),
    (
        'Ansprechpartnerin: Frau Dr. Henrike Flämig, Tel. intern 2231',
        ['Henrike', 'Flämig'],
    ),
    (
        'Das Passwort von Kollegin Uhlig ist abgelaufen, sie ist ab Montag wieder da.',
        ['Uhlig'],
    ),
    (
        'Im Auftrag\nJost Seifert\nSachgebiet IT',
        ['Jost', 'Seifert'],
    ),
    (
        'Hi team, Amira Haddad cannot open Citrix since Monday. Best regards, Kwame Mensah',
        ['Amira', 'Haddad', 'Kwame', 'Mensah'],
    ),
    (
        'Bitte an Herrn Nguyen Van Hieu weiterleiten, er vertritt Frau Trinh.',
        ['Hieu', 'Trinh', 'Nguyen'],
    ),
    (
        'Rückmeldung von Hr. Zenker: der Scanner im Bürgerbüro läuft wieder.',
        ['Zenker'],
    ),
    (
        'Von: Mölle, Ricarda <r.moelle@example.org>\nGesendet: Montag\nBetreff: VPN',
        ['Mölle', 'Ricarda'],
    ),
    (
        'Am 03.05.2026 schrieb Sieglinde Wachs <s.wachs@example.org>:\n> Danke',
        ['Sieglinde', 'Wachs'],
    ),
    (
        'Liebe Frau Kühnel, anbei der Antrag von Herrn Rost.',
        ['Kühnel', 'Rost'],
    ),
    (
        'Verteiler: Haupt, Fiedler, Nestler, Kaden',
        ['Haupt', 'Fiedler', 'Nestler', 'Kaden'],
    ),
    (
        'Herr Yusuf Kaplan (geb. 02.04.1979) benötigt einen Termin.',
        ['Yusuf', 'Kaplan', '02.04.1979'],
    ),
    (
        'Mein Name ist Svitlana Hnatiuk und ich wohne seit März in Görlitz.',
        ['Svitlana', 'Hnatiuk'],
    ),
    (
        'Grüße aus Bautzen\nMětška Wałda',
        ['Mětška', 'Wałda'],
    ),
    (
        'Die Kollegen Scholze und Pönitz sind informiert.',
        ['Scholze', 'Pönitz'],
    ),
]
# Written after the rules of stop 24 (a list of lone words that are mostly names; a second
# given name nobody listed after Herr/Frau) were fitted to the two misses above, so CASES is
# no longer held out for them; these are, for the same shapes and others.
CASES_2: list[tuple[str, list[str]]] = [
    ('Teilnehmer: Rößler, Kluge, Wuttke, Zenker', ['Rößler', 'Kluge', 'Wuttke', 'Zenker']),
    ('Bitte informieren Sie Frau Nguyen Thi Hoa über den neuen Termin.',
     ['Nguyen', 'Thi', 'Hoa']),
    ('Für Herrn Rami Haddad Al-Masri fehlt noch die Unterschrift.',
     ['Rami', 'Haddad', 'Al-Masri']),
    ('Der Antrag von Herrn Mirko Wagner ist vollständig.', ['Mirko', 'Wagner']),
    ('Kopie an: Bär, Fuchs, Yılmaz', ['Bär', 'Fuchs', 'Yılmaz']),
    ('Mit freundlichen Grüßen\ni. A. Dörte Scholz-Lindner\nBürgeramt',
     ['Dörte', 'Scholz-Lindner']),
    ('Herr Okonkwo Chukwuma Eze hat heute angerufen.', ['Okonkwo', 'Chukwuma', 'Eze']),
    ('Empfänger: Lindner; Weber; Kaiser', ['Lindner', 'Weber', 'Kaiser']),
    ('Anwesend: Frau Wendt, Herr Gottschalk, Frau Demir', ['Wendt', 'Gottschalk', 'Demir']),
    ('Bitte Frau Hanne Lore Kirsch den Zugang freischalten.', ['Hanne', 'Lore', 'Kirsch']),
]
# Written on 2026-12-07 (stop 25) before running it against the rules: other shapes of
# service-desk text (headers and quote lines in English, "gez.", roles before a name, a name
# in a sentence with no title), other communities (Czech, Bosnian, Kurdish, Nigerian, Afghan).
CASES_3: list[tuple[str, list[str]]] = [
    ('Freundliche Grüße\n\nDr. rer. nat. Gudrun Pilz-Haberkorn\nReferatsleiterin 23',
     ['Gudrun', 'Pilz-Haberkorn']),
    ('Laut Herrn Ślusarczyk ist der Server seit gestern aus.', ['Ślusarczyk']),
    ('Die Kollegin Frau Mehmedović hat keinen Zugriff auf das Postfach.', ['Mehmedović']),
    ('From: Ahmadi, Farid <f.ahmadi@example.org>\nSent: Tuesday, 5 May 2026\nSubject: VPN',
     ['Ahmadi', 'Farid']),
    ('On Mon, 4 May 2026 at 09:12, Bogdan Kowalczyk <b.kowalczyk@example.org> wrote:\n> ok',
     ['Bogdan', 'Kowalczyk']),
    ('Ich bin die neue Sachbearbeiterin, Marzena Lewandowska, und brauche Zugriff auf das '
     'Laufwerk.', ['Marzena', 'Lewandowska']),
    ('Anruf von Frau Tetiana Savchuk wegen ihres Bescheids.', ['Tetiana', 'Savchuk']),
    ('Bitte den Account von Kollegen Hüttig sperren.', ['Hüttig']),
    ('Vertretung: Herr Ronny Mätzold (Durchwahl 455)', ['Ronny', 'Mätzold']),
    ('gez. Friedemann Lötzsch', ['Friedemann', 'Lötzsch']),
    ('Herzliche Grüße aus Hoyerswerda, Jadwiga Nowakowska', ['Jadwiga', 'Nowakowska']),
    ('Thanks for the quick help!\nBest,\nNguyen Duc Anh', ['Nguyen', 'Duc', 'Anh']),
    ('Sachbearbeiter: Kerem Öztürk', ['Kerem', 'Öztürk']),
    ('Teilnehmende: Frau Zschiesche, Herr Bellmann, Frau Haidari',
     ['Zschiesche', 'Bellmann', 'Haidari']),
    ('Antragstellerin: Hevin Shekho, geb. 14.08.1991', ['Hevin', 'Shekho', '14.08.1991']),
    ('Sehr geehrter Herr Wenzeslaus Krahl,\nvielen Dank.', ['Wenzeslaus', 'Krahl']),
    ('Mit besten Grüßen\nYaroslav Tkachenko-Moroz\nFachdienst Soziales',
     ['Yaroslav', 'Tkachenko-Moroz']),
    ('Frau Mai Linh Pham hat den Termin abgesagt.', ['Mai', 'Linh', 'Pham']),
    ('Bitte Rückruf an Herrn Abdulrahman Al-Khatib unter 0351 1234567.',
     ['Abdulrahman', 'Al-Khatib']),
    ('Hallo Frau Gnauck, hallo Herr Seidemann,\nder Drucker geht wieder.',
     ['Gnauck', 'Seidemann']),
    ('Der Laptop von Enrico Zschorn ist defekt.', ['Enrico', 'Zschorn']),
    ('Cc: Kretzschmar, Heiko; Pietzsch, Annerose', ['Kretzschmar', 'Heiko', 'Pietzsch',
                                                    'Annerose']),
    ('Viele Grüße\nDietmut', ['Dietmut']),
    ('Please reset the password for Mr. Emeka Nwosu.', ['Emeka', 'Nwosu']),
    ('Ansprechpartner im Amt ist Herr Lukáš Dvořák.', ['Lukáš', 'Dvořák']),
]
KEPT_3: list[tuple[str, list[str]]] = [
    ('Im Sommer zieht das Bürgerbüro nach Pirna um.', ['Sommer', 'Bürgerbüro', 'Pirna']),
    ('Der Winterdienst meldet Glätte in Meißen und Freiberg.',
     ['Winterdienst', 'Meißen', 'Freiberg']),
    ('Teams, Excel und OneDrive starten nicht, SAP und DATEV laufen.',
     ['Teams', 'Excel', 'OneDrive', 'SAP', 'DATEV']),
    ('Verteiler: Bürgerbüro, Standesamt, Ordnungsamt', ['Bürgerbüro', 'Standesamt',
                                                        'Ordnungsamt']),
    ('Das Ticket zu Webex wurde an Dataport weitergegeben.', ['Webex', 'Dataport']),
    ('Der Schneider der Kleiderkammer braucht einen neuen Drucker.', ['Schneider', 'Drucker']),
]
# Written on 2026-12-07 (stop 25) after the fixes to set 3 and to the shared corpus's misses,
# before it was first run: letter conventions (z. Hd., c/o, Ihr Zeichen, Bearbeiter), phone
# notes, mentions, "looping in", lower-case sign-offs, names in parentheses.
CASES_4: list[tuple[str, list[str]]] = [
    ('z. Hd. Frau Roswitha Kluttig', ['Roswitha', 'Kluttig']),
    ('Bearbeiterin: Nadine Schwotzer, Zimmer 104', ['Nadine', 'Schwotzer']),
    ('Telefonnotiz: Anruf Herr Wolfram Liebscher, bittet um Rückruf.',
     ['Wolfram', 'Liebscher']),
    ('Der Drucker (Frau Tzschentke, 2. OG) druckt nur leere Seiten.', ['Tzschentke']),
    ('Looping in Dariusz Zieliński who owns the firewall.', ['Dariusz', 'Zieliński']),
    ('@Mykola Shevchuk kannst du dir das ansehen?', ['Mykola', 'Shevchuk']),
    ('Hi Ngozi and Chinonso,\nthe share is back.', ['Ngozi', 'Chinonso']),
    ('i.V. Ines Hanisch-Wöhlert', ['Ines', 'Hanisch-Wöhlert']),
    ('Unser Zeichen: 23-4711/Pe, Bearbeiter Herr Pech', ['Pech']),
    ('Zugang für Gülsüm Arslan-Demirtaş einrichten', ['Gülsüm', 'Arslan-Demirtaş']),
    ('Die Kollegin aus Kamenz, Frau Lehmann-Srocka, ist ab heute zuständig.',
     ['Lehmann-Srocka']),
    ('c/o Familie Hashemi, Bautzner Str. 12', ['Hashemi']),
    ('Vertreten durch: Rechtsanwalt Dr. Konstantin Bähr', ['Konstantin', 'Bähr']),
    ('Ich schreibe im Auftrag meiner Mutter, Ingeborg Schnabel, geb. 03.03.1941.',
     ['Ingeborg', 'Schnabel', '03.03.1941']),
    ('Von: Zschau, Mandy\nGesendet: Freitag, 8. Mai 2026 10:14\nAn: Servicedesk',
     ['Zschau', 'Mandy']),
    ('Anbei die Krankmeldung von Herrn Piotr Kaczmarek.', ['Piotr', 'Kaczmarek']),
    ('Sorry for the delay – Farah was out sick. Cheers, Tomasz', ['Farah', 'Tomasz']),
    ('Grüße aus dem Hauptamt\nSteffi Unger-Rietzschel', ['Steffi', 'Unger-Rietzschel']),
    ('Bitte auch Herrn Dipl.-Ing. Arnd Gröschel informieren.', ['Arnd', 'Gröschel']),
    ('Mit freundlichen Grüßen\ni. A. Hoang Thi Lan\nEinwohnermeldeamt',
     ['Hoang', 'Thi', 'Lan']),
    ('Das Konto von Baraa Al-Sayed ist gesperrt.', ['Baraa', 'Al-Sayed']),
    ('Frau Oberbürgermeisterin Kerstin Zwahr lässt ausrichten, dass …',
     ['Kerstin', 'Zwahr']),
    ('Teilnehmer der Schulung: Olesya Romanenko, Bahar Kılıç, Ullrich Mättig',
     ['Olesya', 'Romanenko', 'Bahar', 'Kılıç', 'Ullrich', 'Mättig']),
    ('Rückfragen bitte an Kollegen Stübner (Durchwahl 212).', ['Stübner']),
    ('Liebe Grüße, eure Josefine', ['Josefine']),
]
KEPT_4: list[tuple[str, list[str]]] = [
    ('Der Fahrer hat den Dienstwagen in Bautzen abgestellt.', ['Fahrer', 'Bautzen']),
    ('Bitte an die Poststelle und die Hausverwaltung weiterleiten.', ['Poststelle',
                                                                        'Hausverwaltung']),
    ('Looping in the Security team and Microsoft support.', ['Security', 'Microsoft']),
    ('@Servicedesk kannst du das Ticket schließen?', ['Servicedesk']),
    ('Zugang für Citrix und Jira einrichten.', ['Citrix', 'Jira']),
    ('Vertreten durch: Rechtsamt der Stadt Görlitz', ['Rechtsamt', 'Görlitz']),
]
# Written on 2026-12-07 (stop 25) after set 4's fixes, before its first run: citizens'
# letters, school and daycare, housing, forwarded chains, English out-of-office replies.
CASES_5: list[tuple[str, list[str]]] = [
    ('Mein Sohn Elias Wagenknecht besucht die Kita Sonnenschein.', ['Elias', 'Wagenknecht']),
    ('Ich bin in Vertretung für Frau Adamczyk erreichbar.', ['Adamczyk']),
    ('Wohnungsgeberbestätigung für Herrn Eyüp Çelik liegt bei.', ['Eyüp', 'Çelik']),
    ('I am out of office until Monday. For urgent matters contact Priya Raghunathan.',
     ['Priya', 'Raghunathan']),
    ('---------- Forwarded message ---------\nFrom: Wieland Tzscheetzsch <w.t@example.org>',
     ['Wieland', 'Tzscheetzsch']),
    ('Die Unterlagen hat Herr Kabongo gestern persönlich abgegeben.', ['Kabongo']),
    ('Schülerin: Amelie Zschornack, Klasse 7b', ['Amelie', 'Zschornack']),
    ('Bitte wenden Sie sich an unsere Kollegin Dobromira Kowalska.',
     ['Dobromira', 'Kowalska']),
    ('Danke, Uwe!', ['Uwe']),
    ('Der Mieter, Herr Abdullahi Warsame, meldet Schimmel.', ['Abdullahi', 'Warsame']),
    ('Gesendet von Jadranka Pavlović über Outlook für Android', ['Jadranka', 'Pavlović']),
    ('Wie mit Frau Rehnert und Herrn Gnauck besprochen, anbei die Liste.',
     ['Rehnert', 'Gnauck']),
    ('Lg Marlies', ['Marlies']),
    ('Sachbearbeitung: Herr Björn Rätzel, Tel. 0351 488-2231', ['Björn', 'Rätzel']),
    ('Our new colleague Oluwaseun Adebayo starts on 1 June.', ['Oluwaseun', 'Adebayo']),
    ('Vater: Sergej Wolkow, Mutter: Irina Wolkowa', ['Sergej', 'Wolkow', 'Irina', 'Wolkowa']),
    ('Die Bescheinigung für Nguyễn Văn Long fehlt noch.', ['Nguyễn', 'Long']),
    ('gruß, heiko zenker', ['heiko', 'zenker']),
    ('Rückruf erbeten: Fr. Stolle-Weinhold', ['Stolle-Weinhold']),
    ('Anwesend waren Herr Wünsche, Frau Kotte und Herr Ebert.', ['Wünsche', 'Kotte', 'Ebert']),
]
KEPT_5: list[tuple[str, list[str]]] = [
    ('Die Kita Sonnenschein hat Ferien.', ['Kita', 'Sonnenschein']),
    ('Der Mieter meldet Schimmel im Bad, der Vermieter reagiert nicht.',
     ['Mieter', 'Schimmel', 'Vermieter']),
    ('Gesendet von meinem iPhone über Outlook für Android', ['iPhone', 'Outlook', 'Android']),
    ('Wünsche und Anregungen bitte an die Poststelle.', ['Wünsche', 'Anregungen']),
    ('Lange Wartezeiten im Bürgerbüro, Ebert-Straße 5.', ['Lange', 'Wartezeiten']),
]
# Written on 2026-12-07 (stop 25) after set 5's fix, before its first run: English service
# desk mail, names in subjects and tables, titles of office, hyphenated given names.
CASES_6: list[tuple[str, list[str]]] = [
    ('Hello team, please create an account for Siobhan O’Donnell-Reyes.',
     ['Siobhan', 'O’Donnell-Reyes']),
    ('Ticket raised on behalf of Dr Anjali Venkataraman (Radiology).',
     ['Anjali', 'Venkataraman']),
    ('Name | Raum | Telefon\nKarl-Heinz Zimmermann-Pötzsch | 2.07 | 4412',
     ['Karl-Heinz', 'Zimmermann-Pötzsch']),
    ('AW: Zugang für Lisa-Marie Tränkner', ['Lisa-Marie', 'Tränkner']),
    ('Bürgermeister Gunnar Frietsch bittet um einen Termin.', ['Gunnar', 'Frietsch']),
    ('Kind: Mila Szymańska, Geburtsdatum 02.02.2020', ['Mila', 'Szymańska', '02.02.2020']),
    ('Thanks Björn, and thanks to Oyelaran for the logs.', ['Björn', 'Oyelaran']),
    ('Auf Wunsch von Frau Nowitzki-Tran wurde das Postfach freigegeben.', ['Nowitzki-Tran']),
    ('The laptop belongs to Ruairí Ní Bhriain, who left last week.', ['Ruairí', 'Bhriain']),
    ('Hiermit bestätige ich, Emine Yıldırım-Schulze, den Erhalt.', ['Emine',
                                                                    'Yıldırım-Schulze']),
    ('Herzlichst,\nDr. med. Almut Klepzig', ['Almut', 'Klepzig']),
    ('Kollege Mateusz meldet: Scanner klemmt.', ['Mateusz']),
    ('Rückmeldung an: Tobias Quaas, Schulverwaltungsamt', ['Tobias', 'Quaas']),
    ('My manager, Kateryna Lysenko, approved it.', ['Kateryna', 'Lysenko']),
    ('Please add Henning Stöckert and Beatriz Nascimento to the group.',
     ['Henning', 'Stöckert', 'Beatriz', 'Nascimento']),
]
KEPT_6: list[tuple[str, list[str]]] = [
    ('Name | Raum | Telefon', ['Name', 'Raum', 'Telefon']),
    ('AW: Zugang für den Bauhof', ['Zugang', 'Bauhof']),
    ('Thanks to Microsoft for the patch and to Dataport for the logs.',
     ['Microsoft', 'Dataport']),
    ('The laptop belongs to Radiology, who moved last week.', ['Radiology']),
    ('Please add Teams and Outlook to the image.', ['Teams', 'Outlook']),
]
# Written on 2026-12-07 (stop 26) before its first run: signatures with i. A./i. V., chat
# logs, possessives, forms in capitals and field lists, names after "von/an/mit" in running
# text; Sorbian, Vietnamese, Eritrean, Romanian, Syrian and Russian-German names.
CASES_7: list[tuple[str, list[str]]] = [
    ('Mit freundlichen Grüßen\ni. A. Doreen Kaltofen\nBauordnungsamt',
     ['Doreen', 'Kaltofen']),
    ('Ansprechpartner ist Herr Uwe Gnauck, Zimmer 114.', ['Uwe', 'Gnauck']),
    ('Besprochen mit Silvio Rentzsch sowie Mandy Lässig.',
     ['Silvio', 'Rentzsch', 'Mandy', 'Lässig']),
    ('Die Sekretärin (Frau Kunath) hat das Passwort vergessen.', ['Kunath']),
    ('Herrn Pöschels Laptop startet nicht mehr.', ['Pöschels']),
    ("Ayodele's laptop will not boot after the update.", ['Ayodele']),
    ('Ramona Pech: Drucker geht wieder\nIT: danke für die Info', ['Ramona', 'Pech']),
    ('Antragstellerin: Nguyễn Thị Hoa, geb. 14.09.1987', ['Nguyễn', 'Hoa', '14.09.1987']),
    ('Bitte Zugang für Yonas Tesfaye und Rasha Haddad einrichten.',
     ['Yonas', 'Tesfaye', 'Rasha', 'Haddad']),
    ('Der Antrag von Ionuț Popescu ist eingegangen.', ['Ionuț', 'Popescu']),
    ('Vertretung: Frau Dr. Heike Wunderlich-Seidel', ['Heike', 'Wunderlich-Seidel']),
    ('Weitergeleitet an Kerstin Eulitz zur Prüfung.', ['Kerstin', 'Eulitz']),
    ('NAME: RENÉ JÄHNIG\nANLIEGEN: NEUES PASSWORT', ['RENÉ', 'JÄHNIG']),
    ('Nachname: Böttger, Vorname: Ines', ['Böttger', 'Ines']),
    ('Spoke with Aleksandra on the phone, she will send the logs.', ['Aleksandra']),
    ('Jun Wei said the VPN drops every hour.', ['Jun', 'Wei']),
    ('Schöne Grüße aus Kamenz\nSandro', ['Sandro']),
    ('Cheers,\nDeclan', ['Declan']),
    ('Waldemar Dück (Hausmeister) meldet einen Wasserschaden.', ['Waldemar', 'Dück']),
    ('Dobry dźeń, pisam za Jadwigu Nukowu z Chrósćic.', ['Jadwigu', 'Nukowu']),
]
KEPT_7: list[tuple[str, list[str]]] = [
    ('Sachbearbeitung: Kfz-Zulassung, Zimmer 114', ['Kfz-Zulassung', 'Zimmer']),
    ('Ansprechpartner ist das Bürgerbüro.', ['Bürgerbüro']),
    ('Spoke with Microsoft support on the phone.', ['Microsoft']),
    ('Weitergeleitet an Poststelle zur Prüfung.', ['Poststelle', 'Prüfung']),
    ('NEUES PASSWORT FÜR DAS FACHVERFAHREN', ['NEUES', 'PASSWORT', 'FACHVERFAHREN']),
    ('Cheers,\nTeam IT', ['Team']),
]
# Written on 2026-12-07 (stop 26) after set 7's fixes, before its first run: schools and
# daycare, birth names, roles after a comma, form labels not used before, numbered lists;
# Hungarian (surname first), Greek, Albanian, Bulgarian, Somali and Pashto names.
CASES_8: list[tuple[str, list[str]]] = [
    ('Die Mutter von Lina-Sophie Krahl hat angerufen.', ['Lina-Sophie', 'Krahl']),
    ('(Ansprechpartnerin: Bettina Noack, Tel. 4471)', ['Bettina', 'Noack']),
    ('Unterschrift: Gerd Leuschner', ['Gerd', 'Leuschner']),
    ('Zeuge: Herr Marcel Wünsche', ['Marcel', 'Wünsche']),
    ('Bitte die Akte des Herrn Raffael Kühnel heraussuchen.', ['Raffael', 'Kühnel']),
    ('im Auftrag von Maik Scheibe', ['Maik', 'Scheibe']),
    ('Antragstellerin ist Sabine Kaiser geb. Lorenz.', ['Sabine', 'Kaiser', 'Lorenz']),
    ('Kontoinhaber: Dmytro Savchenko', ['Dmytro', 'Savchenko']),
    ('Erziehungsberechtigte: Aylin und Murat Demir', ['Aylin', 'Murat', 'Demir']),
    ('Az. 12/2026, Nagy Zsófia, wohnhaft in Pirna', ['Nagy', 'Zsófia']),
    ('Georgios Papadopoulos und Arben Krasniqi haben keinen Zugang.',
     ['Georgios', 'Papadopoulos', 'Arben', 'Krasniqi']),
    ('Forwarding this from Ivaylo on behalf of Abdirahman Warsame.',
     ['Ivaylo', 'Abdirahman', 'Warsame']),
    ("cc'ing Gulalai Ahmadzai, who owns the share.", ['Gulalai', 'Ahmadzai']),
    ('Jens Baumgärtel, Sachgebietsleiter Bauaufsicht', ['Jens', 'Baumgärtel']),
    ('Tel. Rücksprache mit Fr. Hentschel: Termin passt.', ['Hentschel']),
    ('Hallo Frau Dr. Rößler-Kunze,\ndas Konto ist entsperrt.', ['Rößler-Kunze']),
    ('Teilnehmende:\n1. Kübra Aslan\n2. Ole Tiedemann', ['Kübra', 'Aslan', 'Ole', 'Tiedemann']),
    ('Patientin Jolanta Kamińska, geb. 30.11.1958', ['Jolanta', 'Kamińska', '30.11.1958']),
]
KEPT_8: list[tuple[str, list[str]]] = [
    ('Unterschrift: fehlt noch, Kontoinhaber: siehe Anlage', ['Unterschrift', 'Kontoinhaber',
                                                              'Anlage']),
    ('Erziehungsberechtigte: beide Eltern', ['Erziehungsberechtigte', 'Eltern']),
    ('Teilnehmende:\n1. Drucker\n2. Scanner', ['Drucker', 'Scanner']),
    ('im Auftrag von Landratsamt Meißen', ['Landratsamt', 'Meißen']),
    ("cc'ing Support, who owns the share.", ['Support']),
    ('Die Mutter der Anlage ist die Hauptplatine.', ['Mutter', 'Anlage', 'Hauptplatine']),
]
KEPT: list[tuple[str, list[str]]] = [
    ('Verteiler: Poststelle, Kämmerei, Bauhof', ['Poststelle', 'Kämmerei', 'Bauhof']),
    ('Frau Schubert Bescheid geben, dass der Laptop fertig ist.', ['Bescheid', 'Laptop']),
    ('Teilnehmer: IT-Service, Personalrat, Datenschutz', ['IT-Service', 'Personalrat',
                                                          'Datenschutz']),
    ('Empfänger: Dresden, Leipzig, Zwickau', ['Dresden', 'Leipzig', 'Zwickau']),

    (
        'Der Vogel sitzt am Fenster, der Koch kocht, Chemnitz und Bautzen sind Städte, '
        'Outlook hängt.',
        ['Vogel', 'Koch', 'Chemnitz', 'Bautzen', 'Outlook'],
    ),
]


def recall(title: str, cases: list[tuple[str, list[str]]]) -> None:
    total = left = 0
    for text, names in cases:
        result = red.redact(text, language="de", pseudonyms=KeyedPseudonyms(b"k" * 32)).text
        missed = [name for name in names if name in result]
        total += len(names)
        left += len(missed)
        if missed:
            print("left", missed, "in:", result.replace("\n", "⏎")[:150])
    print(f"{title} PERSON recall (name tokens): {(total - left) / total:.3f} "
          f"({total - left}/{total})")


def main() -> None:
    recall("set 1 (held out until stop 24)", CASES)
    recall("set 2 (held out until stop 25)", CASES_2)
    recall("set 3 (held out until its one miss was fixed)", CASES_3)
    recall("set 4 (held out until its misses were fixed)", CASES_4)
    recall("set 5 (held out until its miss was fixed)", CASES_5)
    recall("set 6 (held out)", CASES_6)
    recall("set 7 (held out until its misses were fixed)", CASES_7)
    recall("set 8 (held out until its misses were fixed)", CASES_8)
    kept = total = 0
    for text, words in KEPT + KEPT_3 + KEPT_4 + KEPT_5 + KEPT_6 + KEPT_7 + KEPT_8:
        result = red.redact(text, language="de", pseudonyms=KeyedPseudonyms(b"k" * 32)).text
        gone = [w for w in words if w not in result]
        if gone:
            print("removed", gone, "in:", result.replace("\n", "⏎")[:150])
        kept += len(words) - len(gone)
        total += len(words)
    print(f"must-keep words kept: {kept}/{total}")


if __name__ == "__main__":
    main()
