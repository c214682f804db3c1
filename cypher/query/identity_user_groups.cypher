// params: usernames
// Every AD group a user reaches through MEMBER_OF chains (direct and nested, at most 12 levels), with
// the shortest distance: 1 is a direct membership. Cycles (legal in AD) are cut by the bound.
UNWIND $usernames AS name
MATCH p = (u:User {username: name})-[:MEMBER_OF*1..12]->(g:ADGroup)
RETURN name AS username, g.sid AS sid, g.name AS group_name, min(length(p)) AS depth
