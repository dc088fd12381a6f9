"""Passwords of ten characters or more that lead the published lists of breached passwords
(the NCSC's 100,000 most common, SecLists), compared case-folded and without spaces. Anything
here is the first thing a guesser tries, whatever its length."""

COMMON_PASSWORDS = frozenset(
    """
    1234567890 0123456789 12345678910 1234567891 123456789a 123456789q a123456789
    1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx3edc q1w2e3r4t5 q1w2e3r4t5y6 zaq12wsx 1qazxsw23edc
    qwertyuiop qwertyuiop1 qwerty1234 qwerty12345 qwerty123456 qwertyqwerty asdfghjkl1
    asdfghjkl; asdfghjklqwerty zxcvbnm123 azertyuiop 1234qwerasdf qazwsxedcrfv
    password12 password123 password1234 password12345 password123456 password01
    password99 password2020 password2021 password2022 password2023 password2024
    password2025 password2026 passw0rd123 p@ssw0rd123 p@ssword123 passwordpassword
    mypassword mypassword1 newpassword newpassword1 changeme123 changemenow letmein123
    letmeinnow welcome123 welcome1234 welcometo welcomehome administrator admin12345
    admin123456 adminadmin administrator1 rootpassword superadmin iloveyou12 iloveyou123
    iloveyouforever football12 football123 baseball123 basketball basketball1 liverpool1
    manchester princess12 sunshine12 sunshine123 starwars12 pokemon123 michael123
    jennifer12 charlie123 1111111111 0000000000 1212121212 1122334455 9876543210
    0987654321 11223344556 123123123123 123321123321 abcdefghij abcdefghijk
    abcdefghijkl abcd123456 abc1234567 aaaaaaaaaa trustno1trustno1 timebank123
    timebank2026 timebanking correcthorsebatterystaple
    """.split()
)
