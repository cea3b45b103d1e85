"""Hand-written name lists for bench/redaction_quality.py, written for the benchmark from
common knowledge of names in Saxony and among its immigrant communities; deliberately NOT
generated from Faker or any other source the redactor reads (gateway/redaction/data/ is made
from Faker). The bench splits them, by checking the redactor's lists, into "names in our
lists" and "names in no list", so the second figure is honest.

Each entry is (first name, surname, female)."""

from __future__ import annotations

# Ordinary German names, most of them on the redactor's generated lists.
GERMAN = [
    ("Anna", "Schmidt", True), ("Peter", "Müller", False), ("Sabine", "Weber", True),
    ("Thomas", "Wagner", False), ("Kerstin", "Becker", True), ("Uwe", "Hoffmann", False),
    ("Heike", "Schulz", True), ("Andreas", "Richter", False), ("Jens", "Klein", False),
    ("Silke", "Schröder", True), ("Torsten", "Neumann", False), ("Katrin", "Schwarz", True),
    ("Frank", "Zimmermann", False), ("Birgit", "Braun", True), ("Matthias", "Krüger", False),
    ("Anja", "Hartmann", True), ("Stefan", "Lange", False), ("Claudia", "Werner", True),
    ("Michael", "Krause", False), ("Petra", "Lehmann", True), ("Ralf", "Köhler", False),
    ("Susanne", "Herrmann", True), ("Jörg", "Walter", False), ("Monika", "König", True),
    ("Dirk", "Mayer", False), ("Ines", "Kaiser", True), ("Holger", "Fuchs", False),
    ("Gabriele", "Peters", True), ("Bernd", "Scholz", False), ("Karin", "Möller", True),
    ("Rainer", "Jung", False), ("Ute", "Hahn", True), ("Steffen", "Schubert", False),
    ("Simone", "Friedrich", True), ("Marko", "Keller", False), ("Nicole", "Günther", True),
    ("Sven", "Berger", False), ("Tanja", "Winkler", True), ("Lutz", "Roth", False),
    ("Yvonne", "Lorenz", True), ("Heiko", "Baumann", False), ("Manuela", "Franke", True),
    ("Volker", "Albrecht", False), ("Doreen", "Schuster", True), ("Ronny", "Ludwig", False),
    ("Mandy", "Böhm", True), ("Enrico", "Krämer", False), ("Peggy", "Vogt", True),
    ("René", "Jäger", False), ("Cindy", "Seidel", True), ("Maik", "Heinrich", False),
    ("Ramona", "Brandt", True), ("Kay", "Schreiber", False), ("Jana", "Dietrich", True),
    ("Falk", "Ziegler", False), ("Antje", "Kuhn", True), ("Gunnar", "Pohl", False),
    ("Constanze", "Engel", True), ("Olaf", "Horn", False), ("Dagmar", "Bergmann", True),
    ("Hagen", "Voigt", False), ("Grit", "Arnold", True), ("Mirko", "Pfeiffer", False),
    ("Sandra", "Kretschmer", True), ("Christian", "Ullrich", False),
]  # fmt: skip

# Saxon surnames (Slavic-rooted -tzsch, -sche, -ke) and Sorbian names.
SAXON_SORBIAN = [
    ("Steffen", "Kretzschmar", False), ("Kathrin", "Pietzsch", True),
    ("Rico", "Zschoche", False), ("Manja", "Zschiesche", True), ("Gerd", "Tzschoppe", False),
    ("Birgit", "Tzschentke", True), ("Jens", "Rietzschel", False), ("Ulrike", "Mietzsch", True),
    ("Lars", "Zschau", False), ("Heidrun", "Päßler", True), ("Volkmar", "Lehnigk", False),
    ("Carmen", "Mättig", True), ("Detlef", "Porstmann", False), ("Annett", "Flechsig", True),
    ("Tilo", "Gruhl", False), ("Romy", "Löschner", True), ("Enrico", "Kotte", False),
    ("Kristin", "Drechsel", True), ("Ronald", "Gläser", False), ("Sylvia", "Reichelt", True),
    ("Jurij", "Krawc", False), ("Hanka", "Šołta", True), ("Měrćin", "Nawka", False),
    ("Lejna", "Wjelan", True), ("Pětr", "Handrik", False), ("Marja", "Hrjehor", True),
    ("Beno", "Brězan", False), ("Milena", "Kowar", True), ("Jan", "Nuk", False),
    ("Katka", "Hančka", True), ("Bjarnat", "Ćěsla", False), ("Dorota", "Mětšk", True),
    ("Michał", "Kupak", False), ("Lenka", "Wićaz", True), ("Měto", "Pjech", False),
    ("Hilža", "Nowak", True), ("Wórša", "Kral", True), ("Jakub", "Cyž", False),
]  # fmt: skip

TURKISH = [
    ("Mehmet", "Yılmaz", False), ("Ayşe", "Kaya", True), ("Mustafa", "Demir", False),
    ("Emine", "Şahin", True), ("Hüseyin", "Çelik", False), ("Fatma", "Yıldız", True),
    ("Murat", "Öztürk", False), ("Zeynep", "Aydın", True), ("Emre", "Arslan", False),
    ("Elif", "Doğan", True), ("Serkan", "Kılıç", False), ("Hatice", "Erdoğan", True),
    ("Burak", "Özdemir", False), ("Gülsüm", "Polat", True), ("Cem", "Güler", False),
    ("Derya", "Korkmaz", True), ("Volkan", "Aksoy", False), ("Sevgi", "Karataş", True),
]  # fmt: skip

POLISH = [
    ("Krzysztof", "Kowalski", False), ("Małgorzata", "Wiśniewska", True),
    ("Tomasz", "Wójcik", False), ("Agnieszka", "Kowalczyk", True),
    ("Grzegorz", "Kamiński", False), ("Katarzyna", "Lewandowska", True),
    ("Łukasz", "Zieliński", False), ("Dorota", "Szymańska", True),
    ("Wojciech", "Woźniak", False), ("Joanna", "Dąbrowska", True),
    ("Bartosz", "Kozłowski", False), ("Ewa", "Jankowska", True), ("Piotr", "Mazur", False),
    ("Beata", "Krawczyk", True), ("Paweł", "Piotrowski", False), ("Iwona", "Grabowska", True),
    ("Marek", "Pawłowski", False), ("Renata", "Michalska", True),
]  # fmt: skip

UKRAINIAN = [
    ("Olena", "Kovalenko", True), ("Mykola", "Shevchenko", False),
    ("Oksana", "Bondarenko", True), ("Taras", "Tkachenko", False),
    ("Iryna", "Kravchenko", True), ("Bohdan", "Oliinyk", False), ("Yuliia", "Melnyk", True),
    ("Dmytro", "Boiko", False), ("Halyna", "Lysenko", True), ("Andrii", "Marchenko", False),
    ("Nataliia", "Rudenko", True), ("Serhii", "Savchenko", False),
    ("Viktoriia", "Petrenko", True), ("Oleksandr", "Hrytsenko", False),
    ("Tetiana", "Ponomarenko", True), ("Volodymyr", "Schewtschenko", False),
    ("Switlana", "Tkatschenko", True), ("Wolodymyr", "Kowaltschuk", False),
]  # fmt: skip

ARABIC = [
    ("Mohammed", "Al-Hassan", False), ("Fatima", "Haddad", True), ("Ahmad", "Khalil", False),
    ("Layla", "Nasser", True), ("Omar", "Mansour", False), ("Rania", "Saleh", True),
    ("Khaled", "Hamdan", False), ("Yasmin", "Darwish", True), ("Samir", "Qasim", False),
    ("Nour", "Al-Khatib", True), ("Abdulrahman", "Sabbagh", False), ("Amal", "Kanaan", True),
    ("Hassan", "El-Amin", False), ("Rasha", "Youssef", True), ("Tarek", "Barakat", False),
    ("Huda", "Abu-Zaid", True), ("Bilal", "Shalabi", False), ("Mariam", "Alhamwi", True),
]  # fmt: skip

VIETNAMESE = [
    ("Thi Lan", "Nguyen", True), ("Van Minh", "Tran", False), ("Thu Trang", "Pham", True),
    ("Duc Anh", "Hoang", False), ("Minh Chau", "Phan", True), ("Quang Huy", "Vu", False),
    ("Thi Huong", "Dang", True), ("Van Tuan", "Bui", False), ("Thanh Hoa", "Ngo", True),
    ("Van Hung", "Duong", False), ("Thi Thuy", "Truong", True), ("Quoc Bao", "Dinh", False),
    ("Thị Hằng", "Nguyễn", True), ("Văn Đức", "Trần", False), ("Ngọc Ánh", "Lê", True),
]  # fmt: skip

GROUPS = {
    "german": GERMAN,
    "saxon-sorbian": SAXON_SORBIAN,
    "turkish": TURKISH,
    "polish": POLISH,
    "ukrainian": UKRAINIAN,
    "arabic": ARABIC,
    "vietnamese": VIETNAMESE,
}

# Agents of the service desk (in the config's `agents`): they write, sign and are addressed.
AGENTS = [
    ("Sebastian", "Zschockelt", False), ("Nadine", "Rötschke", True),
    ("Oleksii", "Hnatiuk", False), ("Thi Mai", "Luong", True),
]  # fmt: skip

# Words that must stay: surnames used as words, places, products, weekdays, months.
# Each is used in a sentence of the corpus where it is plainly not a person.
KEEP_SENTENCES_DE = [
    "Der [[KEEP:Koch]] der Kantine meldet, dass der Kühlschrank ausgefallen ist.",
    "Seit heute früh sitzt ein [[KEEP:Vogel]] am Fenster des Serverraums.",
    "Der [[KEEP:Reißwolf]] im 3. OG ist verstopft.",
    "Im Kühlschrank steht noch [[KEEP:Müller]]-Milch von der letzten Besprechung.",
    "Die Außenstelle in [[KEEP:Chemnitz]] ist ebenfalls betroffen.",
    "Die Kollegen in [[KEEP:Bautzen]] und [[KEEP:Görlitz]] haben dasselbe Problem.",
    "Seit dem Update startet [[KEEP:Outlook]] nicht mehr.",
    "Die Anmeldung an [[KEEP:Citrix]] schlägt fehl.",
    "Am [[KEEP:Montag]] war alles noch in Ordnung.",
    "Bis [[KEEP:Freitag]] brauchen wir eine Lösung.",
    "Die Frist endet im [[KEEP:Oktober]].",
    "Der Termin im [[KEEP:Mai]] ist bestätigt.",
    "Der [[KEEP:Schneider]] für die Akten ist defekt.",
    "Der [[KEEP:Richter]] am Amtsgericht [[KEEP:Zwickau]] hat den Beschluss geschickt.",
    "Ein [[KEEP:Fuchs]] hat die Kabel im Hof angenagt.",
    "Der [[KEEP:Zimmermann]] kommt morgen wegen der Tür.",
    "Der [[KEEP:Wolf]] im Wappen ist auf dem Briefbogen verpixelt.",
    "Die Dienststelle [[KEEP:Hoyerswerda]] meldet denselben Fehler in [[KEEP:Teams]].",
    "Die Dateien liegen in [[KEEP:Nextcloud]], nicht in [[KEEP:SharePoint]].",
    "Bitte den Fall in [[KEEP:Jira]] anlegen und in [[KEEP:Confluence]] dokumentieren.",
    "Der Bürger aus [[KEEP:Plauen]] fragt nach dem Stand seines Wohngeldantrags.",
    "Die Verbindung nach [[KEEP:Leipzig]] über [[KEEP:Fortinet]] bricht ständig ab.",
    "Die Lizenz für [[KEEP:Adobe]] Acrobat läuft im [[KEEP:Juni]] aus.",
    "Der [[KEEP:Bauer]] aus [[KEEP:Kamenz]] liefert wieder die Milch für die Kantine.",
    "Wir treffen uns am [[KEEP:Dienstag]] in [[KEEP:Dresden]].",
    "Der [[KEEP:Meister]] der Hausmeisterei hat den Schlüssel.",
    "Die Dienstreise nach [[KEEP:Pirna]] und [[KEEP:Meißen]] ist genehmigt.",
    "Das Formular für [[KEEP:Elster]] lädt nicht.",
    "Der [[KEEP:Hahn]] in der Teeküche tropft.",
    "Auf dem Laptop läuft [[KEEP:Windows]] 11 mit [[KEEP:Firefox]].",
    "Die Anfrage kam über das Bürgerportal [[KEEP:Amt24]] aus [[KEEP:Freiberg]].",
    "Der [[KEEP:Schmied]] hat das Tor im [[KEEP:August]] repariert.",
]
KEEP_SENTENCES_EN = [
    "The [[KEEP:Cook]] in the canteen reports the fridge is broken.",
    "Since [[KEEP:Monday]] [[KEEP:Outlook]] keeps crashing.",
    "Our office in [[KEEP:Chemnitz]] cannot reach [[KEEP:Citrix]].",
    "The deadline is in [[KEEP:March]].",
    "The [[KEEP:Baker]] Street office is closed on [[KEEP:Friday]].",
    "Please open the ticket in [[KEEP:Jira]] and link the [[KEEP:Confluence]] page.",
    "The VPN to [[KEEP:Leipzig]] drops every hour via [[KEEP:Fortinet]].",
    "The [[KEEP:Miller]] machine in the print shop is jammed.",
    "Users in [[KEEP:Dresden]] report that [[KEEP:Teams]] freezes.",
    "We moved the files from [[KEEP:Dropbox]] to [[KEEP:Nextcloud]] in [[KEEP:June]].",
    "The [[KEEP:Shepherd]] dog on the screensaver is not ours.",
    "A [[KEEP:Fox]] got into the cable duct in [[KEEP:Zwickau]].",
]
